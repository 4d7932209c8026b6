"""Decorators that guard staff pages: only staff signed in with both factors get in, and each
duty sees only its own pages (administrators run services; auditors read the audit record and
change nothing). A guarded view receives the signed-in StaffMember as its first argument."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Blueprint, abort, g, redirect, request, url_for

from idp.models import StaffMember
from idp.staff.accounts import can_read_audit_record, has_staff_second_factor
from idp.staff.sessions import current_staff_session, has_both_factors

# Auditing is a separate duty (the staff pages refuse auditors, the audit pages everyone else).
AUDITORS_CHANGE_NOTHING = (
    "Auditors read the audit record and change nothing: the pages for running services are "
    "for administrators."
)
AUDITORS_ONLY = (
    "The audit record is read by auditors only. Auditing is a separate duty from running the "
    "platform or a department's services, so administrators cannot read it."
)


def english_only(blueprint: Blueprint) -> Blueprint:
    """Staff pages are wholly in English: whatever language a citizen's cookie or ?lang= asks
    for in the same browser, the layout's words are English and no Welsh link is shown (the
    staff layout has none). Set before anything is drawn, so Flask-Babel and the layout read
    it (idp/i18n.py select_locale)."""

    @blueprint.before_request
    def _english() -> None:
        g.page_lang = "en"

    return blueprint


def safe_next(target: str | None) -> str:
    """Only a path on this site, never an absolute URL (no open redirect).

    Control characters and spaces are refused too: a browser drops tabs and newlines from a
    Location, so "/<TAB>/evil.example" would arrive as "//evil.example".
    """
    if (
        target
        and target.startswith("/")
        and not target.startswith("//")
        and "\\" not in target
        and all(32 < ord(c) < 127 for c in target)
    ):
        return target
    return url_for("departments.home")


def _second_step_endpoint(member: StaffMember) -> str:
    """The code page, or the setup page for a member without an authenticator app yet."""
    return "staff.second_factor" if has_staff_second_factor(member) else "staff.second_factor_setup"


def second_step(member: StaffMember, next_path: str | None) -> str:
    """The second step of sign-in, coming back to next_path (a path on this site) after it."""
    return url_for(_second_step_endpoint(member), next=safe_next(next_path))


def staff_required(platform: bool = False) -> Callable:
    """Only staff signed in with both factors (platform administrators when platform=True)
    see the page; after the password alone, the second step comes first."""

    def decorate(view: Callable) -> Callable:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            session = current_staff_session()
            if session is None:
                return redirect(url_for("staff.sign_in", next=request.path))
            if not has_both_factors(session):
                return redirect(second_step(session.staff, request.path))
            member = session.staff
            if member.is_auditor:
                # Auditing is a separate duty: auditors read the record and change nothing.
                if request.endpoint == "departments.home":
                    return redirect(url_for("audit.entries"))
                abort(403, AUDITORS_CHANGE_NOTHING)
            if platform and not member.is_platform_admin:
                abort(403, "This page is for platform administrators.")
            return view(member, *args, **kwargs)

        return wrapper

    return decorate


def _here() -> str:
    """This page's path and query string, to come back to after signing in."""
    return request.full_path.rstrip("?") if request.method == "GET" else request.path


def auditor_required(view: Callable) -> Callable:
    """Only auditors signed in with both factors see the page; the view gets the member."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        session = current_staff_session()
        if session is None:
            return redirect(url_for("staff.sign_in", next=_here()))
        if not has_both_factors(session):
            return redirect(url_for(_second_step_endpoint(session.staff), next=_here()))
        if not can_read_audit_record(session.staff):
            abort(403, AUDITORS_ONLY)
        return view(session.staff, *args, **kwargs)

    return wrapper
