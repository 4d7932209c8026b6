"""A start page, the signed-in citizen's page, and sign-out as the package's example project
does it (ExampleLogoutView: out of the service, then out of the IdP)."""

import requests
from django.conf import settings
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.html import escape
from govuk_onelogin_django.types import IdentityConfidenceLevel
from govuk_onelogin_django.utils import (
    TOKEN_SESSION_KEY,
    get_oidc_config,
    get_one_login_logout_url,
)

from department.identity import CORE_IDENTITY, IdentityNotVerified, verified_identity


def start(request):
    return HttpResponse('<a href="/one-login/login/">Sign in</a>')


@login_required
def account(request):
    user = request.user
    page = f"Signed in as {escape(user.email)} (subject {escape(user.username)})"
    level = settings.GOV_UK_ONE_LOGIN_CONFIDENCE_LEVEL
    if level != IdentityConfidenceLevel.NONE:
        page += "<br>" + identity_line(request, user.username, str(level))
    return HttpResponse(page)


def identity_line(request, sub: str, level: str) -> str:
    """The verified name and birth date from UserInfo's core identity claim, checked here."""
    config = get_oidc_config()
    token = request.session[TOKEN_SESSION_KEY]
    userinfo = requests.get(
        config.userinfo_url,
        headers={"Authorization": f"Bearer {token['access_token']}"},
        timeout=5,
    )
    userinfo.raise_for_status()
    try:
        identity = verified_identity(
            userinfo.json().get(CORE_IDENTITY),
            did_url=settings.IDENTITY_DID_URL,
            issuer=config.issuer,
            client_id=settings.GOV_UK_ONE_LOGIN_CLIENT_ID,
            sub=sub,
            level=level,
        )
    except IdentityNotVerified as problem:
        return f"Identity not verified: {escape(str(problem))}"
    return (
        f"Verified identity: {escape(identity['given_names'])} {escape(identity['family_name'])},"
        f" born {escape(identity['birth_date'])}"
    )


def sign_out(request):
    signed_out = request.build_absolute_uri(reverse("signed-out"))
    url = get_one_login_logout_url(request, post_logout_redirect_uri=signed_out)
    logout(request)
    return redirect(url)


def signed_out(request):
    return HttpResponse("You have signed out")
