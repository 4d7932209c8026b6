"""The department's pages, and govuk-onelogin-django's under one-login/ (its README, step 2)."""

from django.urls import include, path

from department import views

urlpatterns = [
    path("", views.start, name="start"),
    path("account/", views.account, name="account"),
    path("sign-out/", views.sign_out, name="sign-out"),
    path("signed-out/", views.signed_out, name="signed-out"),
    path("one-login/", include("govuk_onelogin_django.urls")),
]
