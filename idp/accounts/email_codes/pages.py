"""The pages' side of email codes: send a code (throttled), and check a typed one (throttled).

Sign-up, password reset and changing an email address or the authenticator app all use these
steps: their own pages (sign_up, recovery, manage) route to them. This module has no routes.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Response, redirect, render_template, request
from flask_babel import gettext as _

from idp import audit
from idp.accounts.citizens import AccountError, normalise_email
from idp.accounts.email_codes import logic as email_codes
from idp.accounts.email_codes.forms import ButtonForm, EmailForm
from idp.accounts.one_time_codes import Outcome
from idp.accounts.page_helpers import Refusal
from idp.accounts.shared_forms import CodeForm
from idp.mail import send_in_background
from idp.models import EmailCode
from idp.security import throttle
from idp.security.throttle import Decision


def _wait(decision: Decision) -> str:
    return throttle.wait_in_words(decision.retry_after)


def send_code(
    purpose: str,
    address: str,
    letter: Callable[[str | None], tuple[str, str] | None],
    *,
    citizen_id: int | None = None,
    deliverable: bool = True,
) -> Refusal | None:
    """Start a journey and email its code; letter(code) gives the subject and body (code is
    None when no code works: letter may then return None to send nothing).

    Sending is throttled per address and per network, so nobody can flood an inbox.
    """
    ip = request.remote_addr or ""
    # Per address and network: a stranger asking for many codes cannot stop the owner
    # (elsewhere) from getting theirs; the per-IP limit still caps one network.
    key = throttle.email_key(address, realm=f"send:{throttle.digest(ip)[:16]}")
    decision = throttle.check("email_send", key, ip)
    if not decision.allowed:
        # Never the address (nor a hash of it): the citizen's id when the account is known.
        audit.record(
            "email_code.refused",
            outcome="failure",
            reason=decision.reason,
            citizen_id=citizen_id,
            purpose=purpose,
        )
        return Refusal(
            _(
                "You have asked for too many codes. Wait %(wait)s, then try again.",
                wait=_wait(decision),
            ),
            429,
            {"Retry-After": str(decision.retry_after)},
        )
    code = email_codes.issue(purpose, address, citizen_id=citizen_id, deliverable=deliverable)
    throttle.record_failure("email_send", key, ip)
    message = letter(code)
    if message is not None:
        # In the background: the page takes as long whether or not an email goes.
        send_in_background(address, *message)
    audit.record("email_code.sent", citizen_id=citizen_id, purpose=purpose)
    return None


def check_code(row: EmailCode, typed: str, kind: str = "email_code") -> Refusal | None:
    """Check the code typed for a journey; None when it is right (the journey is verified)."""
    # Per journey purpose: wrong codes typed in a sign-up for someone's address do not block
    # the owner's own codes (a new address, a new app, a reset).
    key = throttle.email_key(row.email, realm=row.purpose)
    ip = request.remote_addr or ""
    decision = throttle.check(kind, key, ip)
    if not decision.allowed:
        _audit_refusal(decision, kind, row)
        return Refusal(
            _("Too many wrong codes. Wait %(wait)s and try again.", wait=_wait(decision)),
            429,
            {"Retry-After": str(decision.retry_after)},
        )
    outcome = email_codes.check(row, typed)
    if outcome is Outcome.VERIFIED:
        throttle.record_success(kind, key)
        send_key = throttle.email_key(row.email, realm=f"send:{throttle.digest(ip)[:16]}")
        throttle.record_success("email_send", send_key)
        audit.record("email_code.verified", citizen_id=row.citizen_id, purpose=row.purpose)
        return None
    # Why the code was refused (never the code typed).
    reason = {Outcome.EXPIRED: "expired", Outcome.WRONG: "wrong_code"}.get(
        outcome, "too_many_wrong_codes"
    )
    audit.record(
        "email_code.failed",
        outcome="failure",
        reason=reason,
        citizen_id=row.citizen_id,
        purpose=row.purpose,
    )
    if outcome is Outcome.EXPIRED:
        return Refusal(_("The code has expired. Send another code."))
    if outcome is Outcome.WRONG:
        decision = throttle.record_failure(kind, key, ip)
        if decision.locked:
            _audit_refusal(decision, kind, row)
            return Refusal(
                _("Too many wrong codes. Wait %(wait)s and try again.", wait=_wait(decision)),
                429,
                {"Retry-After": str(decision.retry_after)},
            )
        return Refusal(_("The code is not right. Check the email we sent you and try again."))
    return Refusal(_("You entered the wrong code too many times. Send another code."))


def _audit_refusal(decision: Decision, kind: str, row: EmailCode) -> None:
    """A code check refused by the throttle, or the lock a wrong code set."""
    lockout = throttle.limits_for(kind).lockout_seconds
    throttle.audit_refusal(decision, kind, lockout, citizen_id=row.citizen_id, purpose=row.purpose)


def render_code_page(
    row: EmailCode,
    form,
    urls: dict,
    refusal: Refusal | None = None,
    about_the_code: bool = False,
    **context,
):
    """The 'check your email' page of any journey; urls: action, resend, restart. A refusal
    about_the_code (wrong, spent, expired) shows beside the code's field as well as in the
    error summary; any other (too many codes sent) in the summary only."""
    status = refusal.status if refusal else (400 if form.is_submitted() else 200)
    error = refusal.message if refusal else None
    if error and about_the_code:
        form.code.errors.append(error)
        error = None
    page = render_template(
        "check_email.html",
        form=form,
        email=row.email,
        resend_form=ButtonForm(),
        error=error,
        **urls,
        **context,
    )
    return page, status, (refusal.headers if refusal else None) or {}


def code_page(
    row: EmailCode,
    urls: dict,
    on_verified: Callable[[], Response],
    kind: str = "email_code",
    **context,
):
    """The 'check your email' page: on the right code, on_verified() says where next."""
    form = CodeForm()
    if form.validate_on_submit():
        refusal = check_code(row, form.code.data, kind)
        if refusal is None:
            return on_verified()
        return render_code_page(row, form, urls, refusal, about_the_code=True, **context)
    return render_code_page(row, form, urls, **context)


def send_again_page(row: EmailCode, urls: dict, resend: Callable[[], Refusal | None], **context):
    """'Send another code': resend() sends it; back to the code page, saying so."""
    if not ButtonForm().validate_on_submit():
        return redirect(urls["restart"])
    refusal = resend()
    if refusal is not None:
        return render_code_page(row, CodeForm(formdata=None), urls, refusal, **context)
    action = urls["action"]
    return redirect(action + ("&" if "?" in action else "?") + "sent=1")


def email_page(template: str, send: Callable[[str], Refusal | None], next_url: str, **context):
    """The first page of a journey: an address; send(address) emails its code (or refuses),
    then on to next_url."""

    form = EmailForm()
    refusal = None
    if request.method == "GET":
        form.journey.data = context["journey"]
    elif form.validate_on_submit():
        try:
            address = normalise_email(form.email.data)
        except AccountError as exc:
            form.email.errors.append(str(exc))
        else:
            refusal = send(address)
            if refusal is None:
                return redirect(next_url)
    status = refusal.status if refusal else (400 if request.method == "POST" else 200)
    error = refusal.message if refusal else None
    page = render_template(template, form=form, error=error, **context)
    return page, status, (refusal.headers if refusal else None) or {}
