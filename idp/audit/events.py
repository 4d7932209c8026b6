"""The catalogue of audit events: every event the IdP records, once, with what it means, the
outcomes it may have and the details it carries (as Keycloak's EventType names each event once).

Names follow ``<thing>.<past-tense verb>`` (``password.changed``, ``email_code.sent``), with
the thing qualified where it helps (``staff.second_factor.failed``,
``citizen.signed_out_by_staff``).

``audit.record`` checks every event against this catalogue (``check``). An unknown name or an
outcome the event does not have is a programming error. Where the audit_strict_events setting
says (by default on a developer's machine, the issuer on loopback, as in every test) ``record``
raises ``UnknownEvent`` naming it, so the test that reaches the call fails. Elsewhere the entry
is still recorded as given, and the error is logged on ``idp.audit.store``: refusing would lose
a security event (and fail the citizen's request) over a name. tests/audit/test_event_catalogue.py
also reads every ``audit.record("...")`` call in idp/ and checks its name, outcome and detail
keys here, so a typo fails before anything runs.

Renamed events: entries already in the hash chain keep the name they were recorded under (they
cannot be changed without breaking the chain), so ``FORMER_NAMES`` maps each new name to the old
one (and the outcome the old entries had, where one old name became two). The auditor pages'
event filter and the export's filter use ``filter_terms`` to find both.

Details are documented, not enforced at run time: the static test checks the detail keys written
at each call site; keys passed on as ``**details`` are listed here from their callers.
"""

from __future__ import annotations

from dataclasses import dataclass

SUCCESS = ("success",)
FAILURE = ("failure",)
EITHER = ("success", "failure")

# The test suite's own entries (a chain of entries of no particular event): never recorded by
# the IdP itself (tests/audit/test_event_catalogue.py checks no call site in idp/ uses one).
TEST_PREFIX = "test."


class UnknownEvent(ValueError):
    """An event name (or outcome) that is not in the catalogue: a programming error."""


@dataclass(frozen=True)
class Event:
    """One kind of audit entry."""

    name: str
    description: str
    outcomes: tuple[str, ...] = SUCCESS
    details: tuple[str, ...] = ()


_EVENTS = (
    # -- Citizens: accounts and sign-in ---------------------------------------------------------
    Event("citizen.signed_up", "A citizen created an account"),
    Event("citizen.deleted", "A citizen deleted their account"),
    Event(
        "sign_in.succeeded",
        "A citizen's email address and password were right (the first step of signing in)",
    ),
    Event(
        "sign_in.failed",
        "A sign-in was refused: no such account, a wrong password or a disabled account",
        FAILURE,
    ),
    Event(
        "sign_in.passkey_succeeded",
        "A citizen signed in with a passkey (both factors at once)",
        details=("passkey_id",),
    ),
    Event(
        "sign_in.throttled",
        "An attempt was refused because of too many recent wrong attempts",
        FAILURE,
        ("kind", "retry_after", "purpose", "staff_id"),
    ),
    Event(
        "account.locked",
        "An account was locked after too many wrong attempts",
        FAILURE,
        ("kind", "until", "locked_for", "purpose", "staff_id"),
    ),
    Event(
        "account.unlocked", "An operator unlocked a locked account", details=("staff_id", "actor")
    ),
    Event(
        "reauthentication.failed",
        "A citizen gave a wrong password when asked again before a sensitive change",
        FAILURE,
    ),
    Event("password.changed", "A citizen changed their password", details=("sessions_ended",)),
    Event(
        "password.reset",
        "A citizen set a new password after proving their email address",
        details=("sessions_ended",),
    ),
    Event("email.changed", "A citizen changed their email address"),
    Event("email_code.sent", "A code was emailed to a citizen", details=("purpose",)),
    Event("email_code.verified", "A citizen entered the right emailed code", details=("purpose",)),
    Event("email_code.failed", "A citizen entered a wrong emailed code", FAILURE, ("purpose",)),
    Event(
        "email_code.refused",
        "No code was emailed: too many codes asked for that address",
        FAILURE,
        ("purpose",),
    ),
    # -- Citizens: second factors ---------------------------------------------------------------
    Event(
        "second_factor.added",
        "A citizen (or an operator, for a test citizen) set up a second factor",
        details=("method", "actor", "test_citizen"),
    ),
    Event(
        "second_factor.replaced", "A citizen replaced their authenticator app", details=("method",)
    ),
    Event(
        "second_factor.succeeded",
        "A citizen's second factor was right: the session now has both factors",
        details=("factor", "during", "previous_session"),
    ),
    Event(
        "second_factor.failed",
        "A citizen's second factor was wrong",
        FAILURE,
        ("factor", "during"),
    ),
    Event(
        "second_factor.replayed",
        "An authenticator code was refused because it had already been used",
        FAILURE,
    ),
    Event(
        "second_factor.test_code_reused",
        "A test citizen reused an authenticator code within its step (allowed for test citizens)",
        details=("method",),
    ),
    Event(
        "phone.added",
        "A citizen confirmed a mobile number for codes by text message (a second factor)",
        details=("during",),
    ),
    Event(
        "phone.changed",
        "A citizen replaced their mobile number for codes by text message",
        details=("sessions_ended",),
    ),
    Event("phone.removed", "A citizen removed their mobile number for codes by text message"),
    Event("sms_code.sent", "A code was sent to a citizen by text message", details=("purpose",)),
    Event(
        "sms_code.verified",
        "A citizen entered the right code sent by text message",
        details=("purpose",),
    ),
    Event(
        "sms_code.failed",
        "A citizen entered a wrong code sent by text message to confirm a number",
        FAILURE,
        ("purpose",),
    ),
    Event(
        "sms_code.refused",
        "No text message was sent: too many codes asked for that number from that network",
        FAILURE,
        ("purpose",),
    ),
    Event("recovery_codes.issued", "A citizen was given new recovery codes", details=("count",)),
    Event(
        "recovery_code.used",
        "A citizen used a recovery code instead of their second factor",
        details=("remaining",),
    ),
    Event(
        "passkey.added",
        "A citizen added a passkey",
        details=("passkey_id", "device_type", "aaguid", "first_second_factor"),
    ),
    Event("passkey.removed", "A citizen removed a passkey", details=("passkey_id", "during")),
    Event(
        "passkey.failed",
        "A passkey ceremony (adding one, or signing in with one) was refused",
        FAILURE,
        ("ceremony", "passkey_id"),
    ),
    Event(
        "passkey.sign_count_regressed",
        "A passkey's signature counter went backwards: possibly a cloned authenticator",
        FAILURE,
        ("ceremony", "passkey_id"),
    ),
    # -- Sessions ending ------------------------------------------------------------------------
    Event(
        "citizen.signed_out",
        "A citizen signed out (here, or one of their devices from their account page)",
        details=("by", "device", "from_session"),
    ),
    Event("citizen.signed_out_by_staff", "An operator signed a citizen out everywhere"),
    Event(
        "citizen.reported_unrecognised",
        "A citizen reported something on their account they did not recognise, and was signed"
        " out everywhere",
        details=("sessions_ended", "services"),
    ),
    Event(
        "citizen.signed_out_by_service",
        "A service signed the citizen out (RP-initiated logout)",
        details=("confirmed_by", "hint_valid"),
    ),
    Event(
        "logout.backchannel",
        "A back-channel logout was sent to a service (or could not be)",
        EITHER,
        ("client_status", "attempt", "http_status", "will_retry", "session_ended"),
    ),
    # -- The protocol (written in idp/oidc/) ----------------------------------------------------
    Event(
        "authorization.failed",
        "An authorization request was refused",
        FAILURE,
        ("client_status",),
    ),
    Event(
        "consent.given",
        "A citizen agreed to share their details with a service",
        details=("scope", "identity_claims"),
    ),
    Event(
        "consent.refused",
        "A citizen declined to share their details with a service",
        FAILURE,
        ("scope",),
    ),
    Event(
        "consent.revoked",
        "A citizen withdrew a service's access from their account page (and the verified "
        "identity details it was agreed to receive, by claim name)",
        details=("identity_claims",),
    ),
    Event(
        "authorization_code.issued",
        "A service was given an authorization code: a sign-in to that service",
        details=("scope",),
    ),
    Event(
        "authorization_code.refused",
        "An authorization code was refused because its sign-in had ended",
        FAILURE,
    ),
    Event(
        "authorization_code.replayed",
        "An authorization code was used twice: the tokens issued with it were revoked",
        FAILURE,
    ),
    Event(
        "token.issued",
        "A service exchanged an authorization code for tokens",
        details=("grant_type", "scope", "with_refresh"),
    ),
    Event(
        "token.refreshed",
        "A service used a refresh token for new tokens",
        details=("grant_type", "scope", "with_refresh"),
    ),
    Event(
        "refresh_token.replayed",
        "A refresh token was used twice: its whole family was revoked",
        FAILURE,
    ),
    Event("token.failed", "A token request was refused", FAILURE, ("detail",)),
    Event("token.revoked", "A service revoked a token", details=("found", "token_type")),
    Event(
        "token.introspected",
        "A service asked whether a token is active",
        details=("active", "token_type"),
    ),
    Event("revocation.failed", "A token revocation request was refused", FAILURE, ("detail",)),
    Event(
        "introspection.failed", "A token introspection request was refused", FAILURE, ("detail",)
    ),
    Event(
        "userinfo.released",
        "A service was given a citizen's details (the userinfo endpoint)",
        details=("scope", "claims"),
    ),
    Event("userinfo.failed", "A userinfo request was refused", FAILURE),
    Event(
        "client.authentication_failed",
        "A service failed to authenticate (a wrong secret or a bad client assertion)",
        FAILURE,
        ("endpoint", "method"),
    ),
    Event(
        "endpoint.throttled",
        "A machine-facing endpoint refused a caller after too many failed requests",
        FAILURE,
        ("endpoint", "window"),
    ),
    Event(
        "request.cross_origin_refused",
        "A form was refused because it was posted from another site",
        FAILURE,
        ("path", "origin"),
    ),
    # -- Departments' services ------------------------------------------------------------------
    Event("department.created", "A department was added", details=("department",)),
    Event(
        "department.welsh_name_changed",
        "A department's name in Welsh was set or removed",
        details=("department", "welsh_name", "actor"),
    ),
    Event(
        "client.registered",
        "A service was registered",
        details=("via", "actor", "status", "department", "subject_type", "sector"),
    ),
    Event(
        "client.updated",
        "A service's settings were changed",
        details=(
            "via",
            "actor",
            "changed",
            "status",
            "previous_status",
            "version",
            "previous_version",
            "auth_method_changed",
            "subject_type",
            "sector",
        ),
    ),
    Event(
        "client.registration_read", "A service read its registration (RFC 7592)", details=("via",)
    ),
    Event(
        "client.registration_refused",
        "A registration or a change to one was refused",
        FAILURE,
        ("change", "via", "field"),
    ),
    Event(
        "client.deleted",
        "A service was deleted",
        details=("via", "actor", "tokens", "refresh_tokens", "deliveries"),
    ),
    Event("client.secret_rotated", "A service's client secret was replaced", details=("actor",)),
    Event("client.keys_changed", "A service's public keys were changed", details=("actor", "by")),
    Event("client.logo_refused", "A service's logo could not be fetched or used", FAILURE),
    *(
        Event(
            f"client.{past}",
            f"A service was {past}{hint}",
            details=("actor", "previous_status", "status", "version", "metadata_sha256"),
        )
        for past, hint in (
            ("approved", " (it may now sign citizens in)"),
            ("suspended", " by the platform (its tokens were revoked)"),
            ("reinstated", " after a suspension"),
            ("disabled", " by its department (its tokens were revoked)"),
            ("enabled", " again by its department"),
        )
    ),
    Event(
        "initial_access_token.issued",
        "An operator issued a token that lets a department register services",
        details=("actor", "token_id", "department", "pre_approved", "max_uses"),
    ),
    Event(
        "initial_access_token.revoked",
        "An operator revoked a registration token",
        details=("actor", "token_id"),
    ),
    # -- Staff ----------------------------------------------------------------------------------
    Event(
        "staff.created", "A staff account was created", details=("staff_id", "role", "department")
    ),
    Event("staff.disabled", "A staff account was disabled", details=("staff_id", "actor")),
    Event(
        "staff.sign_in.succeeded",
        "A staff member's password was right (the first step of signing in)",
        details=("staff_id", "role"),
    ),
    Event(
        "staff.sign_in.failed",
        "A staff sign-in was refused: no such account, a wrong password or a disabled account",
        FAILURE,
        ("staff_id",),
    ),
    Event(
        "staff.second_factor.succeeded",
        "A staff member's authenticator code was right: signed in with both factors",
        details=("staff_id", "role"),
    ),
    Event(
        "staff.second_factor.failed",
        "A staff member's authenticator code was wrong",
        FAILURE,
        ("staff_id",),
    ),
    Event(
        "staff.second_factor.replayed",
        "A staff member's authenticator code was refused because it had been used",
        FAILURE,
        ("staff_id",),
    ),
    Event(
        "staff.second_factor.enrolled",
        "A staff member set up their authenticator app",
        details=("staff_id", "method"),
    ),
    Event(
        "staff.second_factor.reset",
        "An operator reset a staff member's authenticator app",
        details=("staff_id", "actor", "sessions_ended"),
    ),
    Event("staff.signed_out", "A staff member signed out", details=("staff_id",)),
    # -- The audit record itself ---------------------------------------------------------------
    Event(
        "audit.viewed",
        "An auditor read the audit record",
        details=(
            "staff_id",
            "page",
            "filters",
            "before",
            "after",
            "shown",
            "session_ref",
            "sessions",
            "unit",
        ),
    ),
    Event(
        "audit.citizen_resolved",
        "An auditor looked up who a citizen id is (with the reason given)",
        details=("staff_id", "found"),
    ),
    Event("audit.exported", "The audit record was exported", details=("export", "staff_id", "via")),
    Event(
        "audit.pruned",
        "Entries older than the retention period were deleted",
        details=("deleted", "first_kept"),
    ),
    Event(
        "audit.erased",
        "A citizen's personal data was erased from the audit record",
        details=("erased_entries", "erased_seqs"),
    ),
    # -- Identity checks (issue 19: the check journey, idp/accounts/identity) ------------------
    # Never the names, birth date, address, document numbers or answers: that a check happened,
    # each step's outcome and contra-indicator codes, the level proved.
    Event(
        "identity.check_started",
        "A citizen started an identity check (with a passport, a driving licence, or neither)",
        details=("reference", "document", "identity_level_asked"),
    ),
    Event(
        "identity.evidence_checked",
        "An evidence service's credential was verified: the check passed or failed (with its "
        "contra-indicator codes)",
        EITHER,
        details=("reference", "kind", "result", "ci"),
    ),
    Event(
        "identity.evidence_refused",
        "An evidence service could not be used, or its credential was refused (signature, "
        "audience, subject, nonce, expiry, or about another person)",
        FAILURE,
        details=("reference", "kind"),
    ),
    Event(
        "identity.proved",
        "A citizen proved their identity at a level (P1 or P2); the verified details were stored",
        details=("reference", "identity_level", "evidence"),
    ),
    Event(
        "identity.check_refused",
        "No identity check could start: too many failed from the citizen's network today",
        FAILURE,
    ),
    Event(
        "identity.failed",
        "A citizen's identity check ended without proving their identity (with the return code)",
        FAILURE,
        details=("reference", "return_code"),
    ),
    Event(
        "identity.erased",
        "A citizen's proved identity, identity checks and disclosures were erased",
        details=("by", "existed"),
    ),
    # -- Identity: verified details given to services (the protocol, issue 19) ------------------
    Event(
        "identity.shared",
        "A service was given a citizen's verified identity details (by claim name, never values)",
        details=("claims", "level"),
    ),
    Event(
        "identity.not_proved_returned",
        "A citizen who could not prove their identity was sent back to the service",
        details=("return_code", "told"),
    ),
)

EVENTS: dict[str, Event] = {event.name: event for event in _EVENTS}
assert len(EVENTS) == len(_EVENTS), "an event is declared twice"

# Renamed events: new name -> the names (and outcome, None for any) their earlier entries have.
FORMER_NAMES: dict[str, tuple[tuple[str, str | None], ...]] = {
    "staff.sign_in.succeeded": (("staff.sign_in", "success"),),
    "staff.sign_in.failed": (("staff.sign_in", "failure"),),
    "staff.second_factor.succeeded": (("staff.signed_in", None),),
    "staff.signed_out": (("staff.sign_out", None),),
    "sign_in.passkey_succeeded": (("sign_in.passkey", None),),
    "citizen.signed_out": (("sign_out.citizen", None),),
    "citizen.signed_out_by_staff": (("sign_out.administrator", None),),
    "citizen.signed_out_by_service": (("sign_out.relying_party", None),),
}
# Old name -> the catalogued names it became.
RENAMED_TO: dict[str, tuple[str, ...]] = {}
for _new, _olds in FORMER_NAMES.items():
    for _old, _outcome in _olds:
        RENAMED_TO[_old] = (*RENAMED_TO.get(_old, ()), _new)


def check(event: str, outcome: str) -> None:
    """Raise UnknownEvent unless the event is catalogued with this outcome (or a test's)."""
    if event.startswith(TEST_PREFIX):
        return
    known = EVENTS.get(event)
    if known is None:
        hint = f" (renamed {', '.join(RENAMED_TO[event])})" if event in RENAMED_TO else ""
        raise UnknownEvent(
            f"unknown audit event {event!r}{hint}: declare it in idp/audit/events.py"
        )
    if outcome not in known.outcomes:
        raise UnknownEvent(
            f"audit event {event!r} has no outcome {outcome!r} "
            f"(it has {', '.join(known.outcomes)}): see idp/audit/events.py"
        )


def description(name: str) -> str | None:
    """What an event means, for the auditor pages; former names say what they became."""
    if name in EVENTS:
        return EVENTS[name].description
    if name in RENAMED_TO:
        return f"Recorded before it was renamed {' / '.join(RENAMED_TO[name])}"
    return None


def filter_terms(name: str) -> tuple[tuple[str, str | None], ...]:
    """What an event filter matches: (event, outcome or None) pairs. A renamed event's name
    also finds the entries recorded under its former name, and a former name finds the
    entries of the names it became."""
    terms: list[tuple[str, str | None]] = [(name, None)]
    terms += FORMER_NAMES.get(name, ())
    terms += [(new, None) for new in RENAMED_TO.get(name, ())]
    return tuple(dict.fromkeys(terms))
