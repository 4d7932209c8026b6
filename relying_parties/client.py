"""The department's OIDC client: Authlib's Flask client pointed at the IdP's discovery document."""

from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any
from urllib.parse import urlencode

import requests
from authlib.integrations.base_client import MismatchingStateError, OAuthError
from authlib.integrations.flask_client import OAuth
from authlib.integrations.flask_client.apps import FlaskOAuth2App
from authlib.oauth2.rfc7523 import PrivateKeyJWT, private_key_jwt_sign
from flask import Flask, current_app, redirect
from joserfc.errors import JoseError
from joserfc.jwk import RSAKey
from werkzeug.wrappers import Response

from relying_parties.backchannel import IdentityProviderKeys
from relying_parties.ended_sessions import EndedSessions, store_path
from relying_parties.errors import IdentityProviderUnavailable, SignInError
from relying_parties.identity import VOCAB, verified_identity
from relying_parties.keys import load_or_create_private_key
from relying_parties.settings import DepartmentSettings

CLIENT_NAME = "idp"
HTTP_TIMEOUT_SECONDS = 10
CLIENT_ASSERTION_LIFETIME_SECONDS = 300
# OIDC Core 3.1.2.1 prompt values, plus "create" (Initiating User Registration).
PROMPT_VALUES = frozenset({"none", "login", "consent", "select_account", "create"})
REQUIRED_METADATA = ("authorization_endpoint", "token_endpoint", "jwks_uri", "userinfo_endpoint")


@dataclass(frozen=True)
class Department:
    """Everything a request needs: the settings, the IdP client and its keys, the signing key,
    and the IdP sessions that back-channel logout has ended."""

    settings: DepartmentSettings
    idp: FlaskOAuth2App
    signing_key: RSAKey | None
    idp_keys: IdentityProviderKeys
    ended_sessions: EndedSessions


def current_department() -> Department:
    """The department served by the current app."""
    return current_app.extensions["relying_party"]


class ShortLivedPrivateKeyJWT(PrivateKeyJWT):
    """RFC 7523 client assertions that expire in five minutes rather than Authlib's hour."""

    def sign(self, auth, token_endpoint: str) -> str:
        """Sign an assertion whose aud is the token endpoint URL the request goes to."""
        return private_key_jwt_sign(
            auth.client_secret,
            client_id=auth.client_id,
            token_endpoint=token_endpoint,
            claims=self.claims,
            header=dict(self.headers or {}),
            alg=self.alg,
            expires_in=CLIENT_ASSERTION_LIFETIME_SECONDS,
        )


def register_idp_client(app: Flask, settings: DepartmentSettings) -> Department:
    """Register the IdP with Authlib; discovery is fetched later, on first sign-in."""
    client_kwargs = {
        "scope": settings.scope,
        "code_challenge_method": "S256",
        "token_endpoint_auth_method": settings.token_endpoint_auth_method,
        "default_timeout": HTTP_TIMEOUT_SECONDS,
    }
    signing_key = None
    # None for a public client: Authlib then sends only client_id in the token request.
    credential = settings.client_secret
    client_auth_methods = None
    if settings.uses_private_key_jwt:
        signing_key = load_or_create_private_key(settings.private_key_path)
        # Authlib's client_secret slot carries the private key for private_key_jwt.
        credential = signing_key
        client_auth_methods = [ShortLivedPrivateKeyJWT(headers={"kid": signing_key.kid})]
    idp = OAuth(app).register(
        CLIENT_NAME,
        client_id=settings.client_id,
        client_secret=credential,
        server_metadata_url=settings.server_metadata_url,
        authorize_params=dict(settings.authorize_params),
        client_kwargs=client_kwargs,
        client_auth_methods=client_auth_methods,
    )
    department = Department(
        settings=settings,
        idp=idp,
        signing_key=signing_key,
        idp_keys=IdentityProviderKeys(partial(idp_jwks, settings, idp)),
        ended_sessions=EndedSessions(store_path(settings.instance_path, settings.client_id)),
    )
    app.extensions["relying_party"] = department
    return department


def provider_metadata(department: Department) -> dict:
    """The IdP's discovery document, fetched once and checked before it is trusted."""
    return checked_metadata(department.settings, department.idp)


def idp_jwks(settings: DepartmentSettings, idp: FlaskOAuth2App, force: bool) -> dict[str, Any]:
    """The IdP's JWKS from its checked discovery document's jwks_uri; fetched anew with force.

    Authlib keeps it with the discovery document, where its ID token checks find it too.
    """
    checked_metadata(settings, idp)
    try:
        return idp.fetch_jwk_set(force=force)
    except (requests.RequestException, ValueError, RuntimeError) as error:
        raise IdentityProviderUnavailable(f"could not fetch the IdP's JWKS: {error}") from error


def checked_metadata(settings: DepartmentSettings, idp: FlaskOAuth2App) -> dict:
    """provider_metadata() for a service's settings and IdP client, before it has a
    Department."""
    try:
        metadata = idp.load_server_metadata()
    except (requests.RequestException, ValueError, TypeError) as error:
        raise IdentityProviderUnavailable(
            f"could not fetch {settings.server_metadata_url}: {error}"
        ) from error
    # OIDC Discovery 4.3: the issuer in the document must be the one we asked.
    problem = None
    if metadata.get("issuer") != settings.issuer:
        problem = f"discovery names issuer {metadata.get('issuer')!r}, expected {settings.issuer!r}"
    elif missing := [name for name in REQUIRED_METADATA if not metadata.get(name)]:
        problem = f"discovery document lacks {', '.join(missing)}"
    if problem:
        # Forget the document so that the next sign-in fetches it again.
        idp.server_metadata.clear()
        raise IdentityProviderUnavailable(problem)
    return metadata


def sign_in_redirect(department: Department, prompt: str | None = None) -> Response:
    """Send the citizen to the IdP's authorization endpoint with PKCE, state and nonce."""
    if prompt is not None and prompt not in PROMPT_VALUES:
        raise SignInError(
            title="That sign-in link is not valid",
            error="invalid_prompt",
            description=f"prompt must be one of {', '.join(sorted(PROMPT_VALUES))}",
        )
    provider_metadata(department)
    extra = {"prompt": prompt} if prompt else {}
    return department.idp.authorize_redirect(department.settings.redirect_uri, **extra)


def sign_out_redirect(department: Department, id_token: str | None) -> Response:
    """RP-initiated logout: to the IdP's end_session_endpoint with the ID token as a hint,
    back to this service's start page; the start page when the IdP cannot be reached."""
    settings = department.settings
    try:
        endpoint = provider_metadata(department).get("end_session_endpoint")
    except IdentityProviderUnavailable:
        endpoint = None
    if not endpoint:
        return redirect(settings.post_logout_redirect_uri)
    params = {
        "client_id": settings.client_id,
        "post_logout_redirect_uri": settings.post_logout_redirect_uri,
    }
    if id_token:
        params["id_token_hint"] = id_token
    return redirect(f"{endpoint}?{urlencode(params)}")


def check_response_issuer(department: Department, args: Mapping[str, str]) -> None:
    """RFC 9207: reject an authorization response that another issuer sent."""
    returned_issuer = args.get("iss")
    if returned_issuer is None:
        # RFC 9207 2.4: an IdP that advertises iss must always send it.
        if "code" in args and provider_metadata(department).get(
            "authorization_response_iss_parameter_supported"
        ):
            raise SignInError(
                title="Sign-in response not trusted",
                error="missing_iss",
                description="The sign-in service did not say who sent the response.",
            )
        return
    # provider_metadata() pins the discovery issuer to settings.issuer, so either will do.
    if returned_issuer != department.settings.issuer:
        raise SignInError(
            title="Sign-in response not trusted",
            error="invalid_iss",
            description=f"The response came from {returned_issuer}, "
            f"not {department.settings.issuer}.",
        )


def id_token_claims_options(settings: DepartmentSettings) -> dict:
    """OIDC Core 3.1.3.7 checks on iss and aud; Authlib's default leaves aud to azp."""
    return {
        "iss": {"essential": True, "value": settings.issuer},
        "aud": {"essential": True, "value": settings.client_id},
    }


def check_level_of_confidence(settings: DepartmentSettings, claims: Mapping) -> None:
    """Refuse a sign-in whose vector of trust (vot) is not the one the service requires."""
    if settings.required_vot is None:
        return
    asserted = claims.get("vot")
    if asserted != settings.required_vot:
        stated = f"at level {asserted}" if asserted is not None else "without stating a level"
        raise SignInError(
            title="This service needs a stronger sign-in",
            error="insufficient_level",
            description=f"The sign-in service signed you in {stated}; "
            f"{settings.name} needs level {settings.required_vot}.",
            status=403,
        )


def complete_sign_in(department: Department, args: Mapping[str, str]) -> dict:
    """Turn the IdP's authorization response into validated ID token claims and UserInfo."""
    check_response_issuer(department, args)
    if "error" in args:
        raise SignInError(
            title="You have not been signed in",
            error=args["error"],
            description=args.get("error_description"),
        )
    if not args.get("code"):
        raise SignInError(
            title="You have not been signed in",
            error="missing_code",
            description="The sign-in response had no authorization code.",
        )
    provider_metadata(department)
    try:
        token = department.idp.authorize_access_token(
            claims_options=id_token_claims_options(department.settings)
        )
        if "userinfo" not in token:
            raise SignInError(
                title="You have not been signed in",
                error="missing_id_token",
                description="The sign-in service did not return an ID token.",
                status=502,
            )
        check_level_of_confidence(department.settings, token["userinfo"])
        userinfo = department.idp.userinfo(token=token)
    except MismatchingStateError as error:
        raise SignInError(
            title="This sign-in has expired",
            error=error.error,
            description="The sign-in was already finished, or started in another browser. "
            "Sign in again.",
        ) from error
    except OAuthError as error:
        raise SignInError(
            title="You have not been signed in",
            error=error.error,
            description=error.description,
            status=502,
        ) from error
    except JoseError as error:
        raise SignInError(
            title="You have not been signed in",
            error="invalid_id_token",
            description=f"The ID token was not valid ({error}).",
            status=502,
        ) from error
    except (requests.ConnectionError, requests.Timeout) as error:
        raise IdentityProviderUnavailable(f"token exchange failed: {error}") from error
    except (requests.RequestException, ValueError, KeyError) as error:
        raise SignInError(
            title="You have not been signed in",
            error="invalid_response",
            description=f"The sign-in service sent a response this service could not use "
            f"({error}).",
            status=502,
        ) from error
    claims = dict(token["userinfo"])
    # OIDC Core 5.3.2: UserInfo about anyone else must not be used.
    if userinfo.get("sub") != claims["sub"]:
        raise SignInError(
            title="You have not been signed in",
            error="userinfo_sub_mismatch",
            description="The sign-in service described a different person.",
            status=502,
        )
    identity = verified_identity(department.settings, userinfo, claims["sub"])
    # The service keeps what it checked, not the identity JWT (the session is a cookie).
    kept = {k: v for k, v in userinfo.items() if not k.startswith(VOCAB)}
    return {"id_token": token["id_token"], "claims": claims, "userinfo": kept, "identity": identity}
