"""A start page, the signed-in citizen's page, and sign-out as the package's example project
does it (ExampleLogoutView: out of the service, then out of the IdP)."""

from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from govuk_onelogin_django.utils import get_one_login_logout_url


def start(request):
    return HttpResponse('<a href="/one-login/login/">Sign in</a>')


@login_required
def account(request):
    user = request.user
    return HttpResponse(f"Signed in as {user.email} (subject {user.username})")


def sign_out(request):
    signed_out = request.build_absolute_uri(reverse("signed-out"))
    url = get_one_login_logout_url(request, post_logout_redirect_uri=signed_out)
    logout(request)
    return redirect(url)


def signed_out(request):
    return HttpResponse("You have signed out")
