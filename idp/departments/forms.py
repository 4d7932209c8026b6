"""Department and platform administrators' forms (Flask-WTF, CSRF on every form). The
registration policy itself lives in metadata.py: these forms only turn fields into RFC 7591
metadata. The staff sign-in forms are idp/staff/forms.py."""

from __future__ import annotations

import json
from typing import Any

from flask_wtf import FlaskForm
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, RSAKey
from wtforms import (
    BooleanField,
    HiddenField,
    IntegerField,
    RadioField,
    SelectField,
    SelectMultipleField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Length, NumberRange, Optional, Regexp
from wtforms.widgets import CheckboxInput, ListWidget

from idp.accounts.identity.vocabulary import (
    ADDRESS,
    CORE_IDENTITY_JWT,
    DRIVING_PERMIT,
    PASSPORT,
    RETURN_CODE,
)
from idp.staff.forms import choices

AUTH_METHOD_CHOICES = [
    ("private_key_jwt", "A private key the service keeps (private_key_jwt) - recommended"),
    ("client_secret_basic", "A client secret in the Authorization header (client_secret_basic)"),
    ("client_secret_post", "A client secret in the request body (client_secret_post)"),
    ("none", "No credential: a public client that uses PKCE only (none)"),
]
OPTIONAL_SCOPES = [
    ("email", "Email address"),
    ("phone", "Phone number"),
    ("profile", "Name"),
]


# The verified identity details a service may register for (One Login's claim names), in plain
# words for departments; the claim name follows, as the service's OIDC library writes it.
IDENTITY_CLAIM_CHOICES = [
    (CORE_IDENTITY_JWT, "Their name and date of birth, as checked (coreIdentityJWT)"),
    (ADDRESS, "Their address, as checked (address)"),
    (PASSPORT, "Their passport details (passport)"),
    (DRIVING_PERMIT, "Their driving licence details (drivingPermit)"),
    (RETURN_CODE, "Why they could not prove their identity, if they could not (returnCode)"),
]
# The identity question's answer for a service that needs none of them.
NO_IDENTITY = "none"


def identity_claim_words(claims: list[str]) -> list[str]:
    """Registered identity claims in plain words (a name this IdP does not know, as it is)."""
    words = dict(IDENTITY_CLAIM_CHOICES)
    return [words.get(claim, claim) for claim in claims]


class PublicKeyError(ValueError):
    """A public key the department pasted cannot be used."""


class MultiCheckboxField(SelectMultipleField):
    """Checkboxes for a multiple choice."""

    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


def _lines(text: str | None) -> list[str]:
    """Non-empty lines of a text area."""
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


def public_key_jwks(text: str) -> dict[str, Any]:
    """A JWKS from a pasted JWKS document, a single JWK, or a PEM public key."""
    text = text.strip()
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except (ValueError, RecursionError):
            raise PublicKeyError("the public key is not valid JSON") from None
        return data if isinstance(data, dict) and "keys" in data else {"keys": [data]}
    if "PRIVATE KEY" in text:
        raise PublicKeyError(
            "that is a private key: paste the public key only, and keep the private key secret"
        )
    for key_type, alg in ((RSAKey, "RS256"), (ECKey, "ES256")):
        try:
            key = key_type.import_key(text.encode())
        except (JoseError, ValueError, TypeError):
            continue
        jwk = key.as_dict(private=False)
        if key_type is ECKey and jwk.get("crv") != "P-256":
            # It would be labelled ES256 below, and ES256 is P-256 only.
            raise PublicKeyError(
                f"the public key is on curve {jwk.get('crv')}: use an RSA or a P-256 key"
            )
        jwk.update(use="sig", alg=alg, kid=key.thumbprint())
        return {"keys": [jwk]}
    raise PublicKeyError(
        "the public key must be a PEM public key (RSA or P-256) or a JWKS document"
    )


# Optional metadata shown as one text field each, and as one line per value.
OPTIONAL_URI_FIELDS = (
    "sector_identifier_uri",
    "backchannel_logout_uri",
    "logo_uri",
    "policy_uri",
    "tos_uri",
)
OPTIONAL_LIST_FIELDS = ("post_logout_redirect_uris", "contacts")


class ServiceForm(FlaskForm):
    """A department's service, as the fields of RFC 7591 client metadata."""

    client_name = StringField(
        "Service name",
        description="Citizens see this when they sign in, for example 'Renew your passport'.",
        validators=[DataRequired("Enter the service name"), Length(max=200)],
    )
    client_name_cy = StringField(
        "Service name in Welsh (optional)",
        description="Citizens who read the pages in Welsh see this instead, for example "
        "'Adnewyddu eich pasbort'.",
        validators=[Optional(), Length(max=200)],
    )
    redirect_uris = TextAreaField(
        "Redirect URIs",
        description="Where citizens return after signing in, one per line. https only "
        "(http is allowed on localhost for development).",
        validators=[DataRequired("Enter at least one redirect URI")],
    )
    token_endpoint_auth_method = RadioField(
        "How the service proves who it is",
        choices=choices(AUTH_METHOD_CHOICES),
        default="private_key_jwt",
    )
    pkce_optional = BooleanField(
        "The service's OpenID Connect library cannot send PKCE",
        description="Only if your OIDC library cannot send PKCE, such as govuk-onelogin-django; "
        "the service must then send a nonce with every sign-in. Not for a public client (none), "
        "which always uses PKCE (S256).",
    )
    jwks_uri = StringField(
        "JWKS URL (for private_key_jwt)",
        description="Where the service publishes its public keys; it can rotate them there.",
        validators=[Optional(), Length(max=2000)],
    )
    public_key = TextAreaField(
        "Or paste a public key (for private_key_jwt)",
        description="A PEM public key (RSA or P-256) or a JWKS document. Never the private key.",
        validators=[Optional(), Length(max=20000)],
    )
    scopes = MultiCheckboxField("Information the service needs", choices=choices(OPTIONAL_SCOPES))
    # Not checked against the choices here: the registration policy refuses an unknown claim
    # name with a message naming it (metadata.py).
    identity_claims = MultiCheckboxField(
        "Verified identity details the service needs (optional)",
        description="Only for a service that must know for certain who the citizen is. The "
        "citizen proves their identity once and agrees to share each detail. A platform "
        "administrator approves these.",
        choices=choices(IDENTITY_CLAIM_CHOICES),
        validate_choice=False,
    )
    subject_type = RadioField(
        "Citizen identifier",
        choices=choices(
            [
                (
                    "pairwise",
                    "Pairwise: an identifier only services in our sector see (recommended)",
                ),
                ("public", "Public: the identifier every public-subject service sees"),
            ]
        ),
        default="pairwise",
    )
    sector_identifier_uri = StringField(
        "Sector identifier URI (optional)",
        description="A JSON list of every redirect URI of the services that should share "
        "citizens' identifiers.",
        validators=[Optional(), Length(max=2000)],
    )
    id_token_signed_response_alg = SelectField(
        "ID token algorithm",
        choices=choices([("ES256", "ES256"), ("RS256", "RS256")]),
        default="ES256",
    )
    post_logout_redirect_uris = TextAreaField(
        "Sign-out return URIs (optional)", description="One per line.", validators=[Optional()]
    )
    backchannel_logout_uri = StringField(
        "Back-channel logout URI (optional)", validators=[Optional(), Length(max=2000)]
    )
    logo_uri = StringField("Logo URL (optional, https)", validators=[Optional(), Length(max=2000)])
    policy_uri = StringField(
        "Privacy notice URL (optional)", validators=[Optional(), Length(max=2000)]
    )
    tos_uri = StringField("Terms of use URL (optional)", validators=[Optional(), Length(max=2000)])
    contacts = TextAreaField(
        "Contact email addresses (optional)", description="One per line.", validators=[Optional()]
    )
    submit = SubmitField("Register the service")

    def metadata(self) -> dict[str, Any]:
        """The form as RFC 7591 metadata (validated by the registration policy afterwards)."""
        method = self.token_endpoint_auth_method.data
        metadata: dict[str, Any] = {
            "client_name": self.client_name.data,
            "redirect_uris": _lines(self.redirect_uris.data),
            "token_endpoint_auth_method": method,
            "scope": " ".join(["openid", *(self.scopes.data or [])]),
            "subject_type": self.subject_type.data,
            "id_token_signed_response_alg": self.id_token_signed_response_alg.data,
            "grant_types": ["authorization_code"],
            "response_types": ["code"],
        }
        if (self.client_name_cy.data or "").strip():
            # RFC 7591 2.2: a human-readable value in another language, tagged with it.
            metadata["client_name#cy"] = self.client_name_cy.data.strip()
        if self.identity_claims.data:
            metadata["identity_claims"] = list(self.identity_claims.data)
        if self.pkce_optional.data:
            # RFC 9700 2.1.1: without PKCE, the nonce binds the code to the sign-in; the
            # registration policy refuses this for a public client.
            metadata["require_pkce"] = False
        if method == "private_key_jwt":
            if self.jwks_uri.data:
                metadata["jwks_uri"] = self.jwks_uri.data.strip()
            if self.public_key.data:
                metadata["jwks"] = public_key_jwks(self.public_key.data)
        for name in OPTIONAL_URI_FIELDS:
            value = (getattr(self, name).data or "").strip()
            if value:
                metadata[name] = value
        for name in OPTIONAL_LIST_FIELDS:
            values = _lines(getattr(self, name).data)
            if values:
                metadata[name] = values
        return metadata

    def fill_from(self, metadata: dict[str, Any]) -> None:
        """Show a stored registration in the form."""
        self.client_name.data = metadata.get("client_name", "")
        self.client_name_cy.data = metadata.get("client_name#cy", "")
        self.redirect_uris.data = "\n".join(metadata.get("redirect_uris", []))
        self.token_endpoint_auth_method.data = metadata.get("token_endpoint_auth_method")
        self.pkce_optional.data = metadata.get("require_pkce") is False
        self.jwks_uri.data = metadata.get("jwks_uri", "")
        if metadata.get("jwks"):
            self.public_key.data = json.dumps(metadata["jwks"], indent=2)
        self.scopes.data = [s for s in metadata.get("scope", "").split() if s != "openid"]
        self.identity_claims.data = list(metadata.get("identity_claims", []))
        self.subject_type.data = metadata.get("subject_type", "pairwise")
        self.id_token_signed_response_alg.data = metadata.get("id_token_signed_response_alg")
        for name in OPTIONAL_URI_FIELDS:
            getattr(self, name).data = metadata.get(name, "")
        for name in OPTIONAL_LIST_FIELDS:
            getattr(self, name).data = "\n".join(metadata.get(name, []))


class KeysForm(FlaskForm):
    """A new JWKS URL or public key for a private_key_jwt service."""

    jwks_uri = StringField("JWKS URL", validators=[Optional(), Length(max=2000)])
    public_key = TextAreaField("Or paste a public key", validators=[Optional(), Length(max=20000)])
    submit = SubmitField("Save the keys")


class ActionForm(FlaskForm):
    """A button that changes something (CSRF-protected), with an optional reason."""

    action = HiddenField(validators=[DataRequired()])
    # The metadata version an administrator saw when approving (a newer one is not approved).
    version = HiddenField(validators=[Optional(), Regexp(r"^[0-9]{1,9}$")])
    reason = StringField(
        "Reason (recorded in the audit log)",
        validators=[Optional(), Length(max=200, message="Give a reason of at most 200 characters")],
    )
    # "yes" once the administrator has confirmed on the confirmation page.
    confirmed = HiddenField(validators=[Optional()])
    submit = SubmitField("Confirm")


class InitialAccessTokenForm(FlaskForm):
    """An initial access token for the RFC 7591 registration API."""

    description = StringField(
        "Who is it for",
        validators=[DataRequired("Say who the token is for"), Length(max=200)],
    )
    department = SelectField("Department", coerce=int)
    max_uses = IntegerField(
        "Registrations it allows",
        default=1,
        validators=[NumberRange(1, 1000, "Allow between 1 and 1000 registrations")],
    )
    lifetime_days = IntegerField(
        "Valid for (days)",
        default=7,
        validators=[NumberRange(1, 90, "A token is valid for 1 to 90 days")],
    )
    pre_approved = BooleanField("Approve the services registered with it straight away")
    submit = SubmitField("Create the token")


# -- Registering a new service, one question a page (GOV.UK Design System: question pages) --

# What a service may learn about citizens, in plain words; every service gets a reference
# number for each citizen (the sub), so it is not asked.
INFORMATION_CHOICES = [
    ("email", "Their email address"),
    ("phone", "Their phone number"),
    ("profile", "Their name"),
]
PROOF_CHOICES = [
    ("secret", "A secret we give you"),
    ("key", "Your public key (more secure)"),
]


class DepartmentWelshNameForm(FlaskForm):
    """A department's name in Welsh, shown on the citizen's pages read in Welsh."""

    name_cy = StringField(
        "Department name in Welsh",
        description="Citizens who read the pages in Welsh see this, for example 'Cyllid a "
        "Thollau EF'. Leave it empty to show the English name.",
        validators=[
            Optional(),
            Length(max=200, message="Enter a Welsh name of at most 200 characters"),
        ],
    )
    submit = SubmitField("Save")


class ServiceNameForm(FlaskForm):
    """The service's name, as citizens see it, in English and (optionally) Welsh."""

    client_name = StringField(
        "Service name",
        description="Citizens see this when they sign in, for example 'Renew your passport'.",
        validators=[
            DataRequired("Enter the service name"),
            Length(max=200, message="Enter a service name of at most 200 characters"),
        ],
    )
    client_name_cy = StringField(
        "Service name in Welsh (optional)",
        description="Citizens who read the pages in Welsh see this instead, for example "
        "'Adnewyddu eich pasbort'.",
        validators=[
            Optional(),
            Length(max=200, message="Enter a Welsh name of at most 200 characters"),
        ],
    )


class ReturnAddressesForm(FlaskForm):
    """Where citizens come back to the service after signing in (redirect URIs)."""

    redirect_uris = TextAreaField(
        "Where should citizens return to after signing in?",
        description="The addresses of the service's pages that receive citizens after they "
        "sign in (redirect URIs), one on each line. They must start with https:// (http is "
        "allowed on localhost for development).",
        validators=[DataRequired("Enter at least one address for citizens to return to")],
    )


class InformationForm(FlaskForm):
    """What the service needs to know about citizens (scopes)."""

    scopes = MultiCheckboxField(
        "What does your service need to know about citizens?",
        description="Every service gets a reference number for each citizen, so it knows "
        "them next time. Choose only what the service needs: citizens are told what it gets. "
        "Select all that apply.",
        choices=choices(INFORMATION_CHOICES),
    )


class IdentityForm(FlaskForm):
    """The verified identity details the service needs (identity_claims), or none. The
    details are checked against the registration policy, which names an unknown one."""

    identity_claims = MultiCheckboxField(
        "Does the service need the citizen's verified identity?",
        description="Only if the service must know for certain who the citizen is, as it "
        "would from a passport. The citizen proves their identity once, then agrees to share "
        "each detail with your service. Select all that apply.",
        choices=choices([*IDENTITY_CLAIM_CHOICES, (NO_IDENTITY, "No, it does not")]),
        validate_choice=False,
    )


class ProofForm(FlaskForm):
    """How the service proves who it is when it collects a citizen's sign-in (token endpoint
    authentication, OIDC Core 9): a secret (client_secret_basic) or its own key pair
    (private_key_jwt), whose public half is either pasted or published at an address."""

    method = RadioField(
        "How will your service prove who it is?",
        description="Your service proves who it is each time it collects a citizen's sign-in.",
        choices=choices(PROOF_CHOICES),
        validators=[DataRequired("Choose how your service will prove who it is")],
    )
    public_key = TextAreaField(
        "Paste your public key",
        description="A PEM public key (RSA or P-256) or a JWKS document. Never the private key.",
        validators=[Optional(), Length(max=20000, message="The public key is too long")],
    )
    jwks_uri = StringField(
        "Or the address where you publish your public keys (JWKS URL)",
        description="Then you can change your keys there without asking us.",
        validators=[Optional(), Length(max=2000, message="The address is too long")],
    )


class SignOutAddressesForm(FlaskForm):
    """Where the service may send citizens after they sign out (optional)."""

    post_logout_redirect_uris = TextAreaField(
        "Where can citizens go after signing out? (optional)",
        description="The addresses your service may send citizens back to after they sign "
        "out, one on each line. Leave it empty if it sends them nowhere in particular.",
        validators=[Optional()],
    )


class LogoForm(FlaskForm):
    """The address of the service's logo (optional)."""

    logo_uri = StringField(
        "What is the address of your service's logo? (optional)",
        description="An https address. We fetch the image once a platform administrator "
        "approves the service, and show it to citizens as they sign in.",
        validators=[Optional(), Length(max=2000, message="The address is too long")],
    )


class RegisterServiceForm(FlaskForm):
    """The check-answers page's button (CSRF-protected)."""
