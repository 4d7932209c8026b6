"""Your identity on your account page: whether you proved it, how well and until when, which
verified details each department received and when, stopping that, and erasing it all with the
account (deleting it, or a data protection erasure of the audit record)."""

from __future__ import annotations

import re
from datetime import timedelta
from html import unescape

from sqlalchemy import func, select

from idp.accounts.identity.store import save_identity
from idp.accounts.identity.vocabulary import ADDRESS, CORE_IDENTITY_JWT, RETURN_CODE
from idp.cli import cli
from idp.dates import uk_date
from idp.extensions import db
from idp.models import (
    Citizen,
    Consent,
    IdentityCheck,
    IdentityDisclosure,
    IdentityRecord,
)
from idp.models.timestamps import utcnow
from tests.accounts.test_your_account import account_page, post_button, signed_in_at
from tests.support.audit import captured_log, logged_events

DETAILS = {
    "name": [
        {
            "nameParts": [
                {"type": "GivenName", "value": "KENNETH"},
                {"type": "FamilyName", "value": "DECERQUEIRA"},
            ]
        }
    ],
    "birthDate": [{"value": "1965-07-08"}],
    "address": [{"buildingNumber": "8", "streetName": "HADLEY ROAD", "postalCode": "BA2 5AA"}],
}
TAG = re.compile(r"<[^>]+>")


def text_of(page, element_id: str) -> str:
    """The visible text of the element with this id (and what it holds)."""
    match = re.search(rf'<(\w+)[^>]*\bid="{element_id}"[^>]*>', page.text)
    assert match, f"no #{element_id} on the page"
    tag, start = match.group(1), match.start()
    # The element ends at the matching close tag of the same name (no nesting of the same tag
    # inside the elements this is used for, except tables, which are handled by counting).
    depth, position = 0, start
    pattern = re.compile(rf"<(/?){tag}\b[^>]*>")
    for found in pattern.finditer(page.text, start):
        depth += -1 if found.group(1) else 1
        if depth == 0:
            position = found.end()
            break
    return " ".join(unescape(TAG.sub(" ", page.text[start:position])).split())


def prove(app, citizen: dict, level: str = "P2") -> None:
    """The citizen's identity, as a finished check stores it."""
    with app.app_context():
        save_identity(citizen["id"], level, DETAILS, f"check-{citizen['id']}")
        db.session.commit()


def disclosed(app, citizen: dict, client_id: str, *claims: str, days_ago: int = 0) -> None:
    """What the userinfo endpoint records when it gives a department verified details."""
    when = utcnow() - timedelta(days=days_ago)
    with app.app_context():
        for claim in claims:
            db.session.add(
                IdentityDisclosure(
                    citizen_id=citizen["id"],
                    client_id=client_id,
                    claim=claim,
                    first_shared_at=when,
                    last_shared_at=utcnow(),
                )
            )
        db.session.commit()


def agreed(app, citizen: dict, client_id: str, *claims: str) -> None:
    """The citizen agreed on the consent page to share these verified details."""
    with app.app_context():
        consent = db.session.scalar(
            select(Consent).filter_by(citizen_id=citizen["id"], client_id=client_id)
        )
        consent.identity_claims = list(claims)
        db.session.commit()


def count(app, model, citizen: dict) -> int:
    with app.app_context():
        return db.session.scalar(
            select(func.count()).select_from(model).where(model.citizen_id == citizen["id"])
        )


# -- Your identity --------------------------------------------------------------------------------


def test_a_citizen_who_has_not_proved_their_identity_is_offered_the_check(
    idp, checking_idp, make_citizen, make_client
):
    browser, _ = signed_in_at(checking_idp, make_client(), make_citizen())

    page = account_page(idp, browser)

    assert text_of(page, "identity") == "You have not proved your identity."
    assert 'id="prove-identity" href="/identity/start"' in page.text
    assert browser.get(idp.url("/identity/start")).status_code == 200
    assert 'id="details-received"' not in page.text


def test_a_proved_identity_shows_its_level_and_dates(idp, make_citizen, make_client):
    citizen = make_citizen()
    browser, _ = signed_in_at(idp, make_client(), citizen)
    prove(idp.app, citizen, "P2")

    page = account_page(idp, browser)

    today = uk_date(utcnow())
    expires = uk_date(utcnow() + timedelta(days=180))
    assert text_of(page, "identity") == (
        f"Identity Proved, with medium confidence Proved on {today} Valid until {expires}"
    )
    assert 'id="prove-identity"' not in page.text, "a medium confidence identity is enough"
    # The details themselves are not shown on the page.
    assert "KENNETH" not in page.text and "1965" not in page.text


def test_a_low_confidence_identity_is_offered_the_check_for_more(idp, make_citizen, make_client):
    citizen = make_citizen()
    browser, _ = signed_in_at(idp, make_client(), citizen)
    prove(idp.app, citizen, "P1")

    page = account_page(idp, browser)

    assert "Proved, with low confidence" in text_of(page, "identity")
    assert "Prove your identity with medium confidence" in page.text
    assert 'id="prove-identity" href="/identity/start"' in page.text


def test_an_expired_identity_says_when_it_expired(idp, make_citizen, make_client, clock):
    citizen = make_citizen()
    prove(idp.app, citizen, "P2")
    with idp.app.app_context():
        expired_on = db.session.scalar(
            select(IdentityRecord.expires_at).filter_by(citizen_id=citizen["id"])
        )
    clock.advance(181 * 86400)
    browser, _ = signed_in_at(idp, make_client(), citizen)

    page = account_page(idp, browser)

    assert text_of(page, "identity") == (
        f"Your proved identity expired on {uk_date(expired_on)}. Services that need it will "
        "ask you to prove it again."
    )
    assert "Prove your identity again" in page.text


# -- What each department received ------------------------------------------------------------


def test_each_department_shows_the_verified_details_it_received_and_when(
    idp, make_citizen, make_client
):
    citizen = make_citizen()
    driving = make_client("dvla", client_name="View your driving licence")
    benefits = make_client("dwp", client_name="Check your benefits")
    browser, _ = signed_in_at(idp, driving, citizen)
    signed_in_at(idp, benefits, citizen)
    prove(idp.app, citizen)
    agreed(idp.app, citizen, "dvla", CORE_IDENTITY_JWT)
    agreed(idp.app, citizen, "dwp", CORE_IDENTITY_JWT, ADDRESS)
    disclosed(idp.app, citizen, "dvla", CORE_IDENTITY_JWT, days_ago=3)
    disclosed(idp.app, citizen, "dwp", ADDRESS, CORE_IDENTITY_JWT)

    page = account_page(idp, browser)

    today, earlier = uk_date(utcnow()), uk_date(utcnow() - timedelta(days=3))
    assert text_of(page, "details-received") == (
        "Check your benefits "
        f"Your name and date of birth, as checked Received {today} Shared "
        f"Your address, as checked Received {today} Shared "
        "View your driving licence "
        f"Your name and date of birth, as checked Received {earlier}, most recently {today} "
        "Shared"
    )


def test_stopping_sharing_names_the_verified_details_that_stop(idp, make_citizen, make_client):
    citizen = make_citizen()
    client = make_client("dwp", client_name="Check your benefits")
    browser, _ = signed_in_at(idp, client, citizen)
    prove(idp.app, citizen)
    agreed(idp.app, citizen, "dwp", ADDRESS, CORE_IDENTITY_JWT, RETURN_CODE)
    disclosed(idp.app, citizen, "dwp", CORE_IDENTITY_JWT, ADDRESS)
    page = account_page(idp, browser)

    with captured_log() as log:
        stopped = post_button(browser, page, r"/account/services/dwp/revoke")

    assert stopped.status_code == 303
    after = browser.follow(stopped)
    assert text_of(after, "stopped-sharing") == (
        "Success That service no longer receives your information. It will ask you again if "
        "you use it. It no longer receives these verified details: Your name and date of "
        "birth, as checked Your address, as checked Why your identity could not be proved "
        "It keeps what it has already received. To ask it to delete them, contact the service."
    )
    # What it received stays on the page, as no longer shared.
    today = uk_date(utcnow())
    assert text_of(after, "details-received") == (
        "Check your benefits "
        f"Your name and date of birth, as checked Received {today} No longer shared "
        f"Your address, as checked Received {today} No longer shared"
    )
    assert 'id="connected-services"' not in after.text
    assert count(idp.app, Consent, citizen) == 0
    assert count(idp.app, IdentityDisclosure, citizen) == 2
    (event,) = [e for e in logged_events(log.getvalue()) if e["event"] == "consent.revoked"]
    assert event["details"]["identity_claims"] == [CORE_IDENTITY_JWT, ADDRESS, RETURN_CODE]
    # The message is said once: the page shown again has no banner.
    assert 'id="stopped-sharing"' not in account_page(idp, browser).text


def test_stopping_a_service_without_verified_details_says_nothing_of_them(
    idp, make_citizen, make_client
):
    citizen = make_citizen()
    browser, _ = signed_in_at(idp, make_client("dvla"), citizen)
    page = account_page(idp, browser)

    after = browser.follow(post_button(browser, page, r"/account/services/dvla/revoke"))

    assert "That service no longer receives your information" in after.text
    assert 'id="stopped-sharing"' not in after.text
    assert "It no longer receives these verified details" not in after.text


def test_a_service_that_asked_for_fewer_details_shows_the_rest_as_no_longer_shared(
    idp, make_citizen, make_client
):
    citizen = make_citizen()
    browser, _ = signed_in_at(idp, make_client("dwp", client_name="Check your benefits"), citizen)
    agreed(idp.app, citizen, "dwp", CORE_IDENTITY_JWT)
    disclosed(idp.app, citizen, "dwp", CORE_IDENTITY_JWT, ADDRESS)

    shown = text_of(account_page(idp, browser), "details-received")

    today = uk_date(utcnow())
    assert f"Your name and date of birth, as checked Received {today} Shared" in shown
    assert f"Your address, as checked Received {today} No longer shared" in shown


def test_stopping_sharing_with_a_service_that_does_not_know_you_is_refused(
    idp, make_citizen, make_client
):
    citizen = make_citizen()
    browser, _ = signed_in_at(idp, make_client("dvla"), citizen)
    page = account_page(idp, browser)

    refused = browser.submit(page, {}, action="/account/services/nobody/revoke")

    assert refused.status_code == 404
    assert count(idp.app, Consent, citizen) == 1


# -- Erasing it with the account ------------------------------------------------------------


def identity_rows(app, citizen: dict) -> dict[str, int]:
    return {
        model.__name__: count(app, model, citizen)
        for model in (IdentityRecord, IdentityCheck, IdentityDisclosure)
    }


def with_identity_everywhere(app, citizen: dict) -> None:
    """A proved identity, a check under way and a detail a department received."""
    prove(app, citizen)
    disclosed(app, citizen, "dwp", CORE_IDENTITY_JWT)
    with app.app_context():
        db.session.add(
            IdentityCheck(
                reference=f"ref-{citizen['id']}",
                citizen_id=citizen["id"],
                expires_at=utcnow() + timedelta(hours=1),
                state_encrypted="x",
            )
        )
        db.session.commit()


def test_deleting_the_account_deletes_the_identity(idp, make_citizen, make_client):
    citizen = make_citizen()
    other = make_citizen("other@example.com")
    browser, _ = signed_in_at(idp, make_client("dwp"), citizen)
    for person in (citizen, other):
        with_identity_everywhere(idp.app, person)
    assert identity_rows(idp.app, citizen) == {
        "IdentityRecord": 1,
        "IdentityCheck": 1,
        "IdentityDisclosure": 1,
    }

    page = browser.get(idp.url("/account/delete"))
    done = browser.submit(page, {"current_password": citizen["password"], "confirm": "y"})

    assert done.status_code == 200 and "Your account has been deleted" in done.text
    with idp.app.app_context():
        assert db.session.get(Citizen, citizen["id"]) is None
    assert set(identity_rows(idp.app, citizen).values()) == {0}
    assert set(identity_rows(idp.app, other).values()) == {1}, "nobody else's"


def test_erasing_a_citizen_from_the_audit_record_erases_their_identity(idp, make_citizen):
    citizen = make_citizen()
    other = make_citizen("other@example.com")
    for person in (citizen, other):
        with_identity_everywhere(idp.app, person)
    runner = idp.app.test_cli_runner()

    refused = runner.invoke(cli, ["audit", "erase-citizen", str(citizen["id"]), "--reason", ""])
    assert refused.exit_code != 0 and "say why" in refused.output
    assert set(identity_rows(idp.app, citizen).values()) == {1}, "nothing erased without a reason"

    result = runner.invoke(
        cli, ["audit", "erase-citizen", str(citizen["id"]), "--reason", "DPA request 19"]
    )

    assert result.exit_code == 0, result.output
    assert "erased their proved identity" in result.output
    assert set(identity_rows(idp.app, citizen).values()) == {0}
    assert set(identity_rows(idp.app, other).values()) == {1}


def test_erasing_a_citizen_with_no_identity_still_works(idp):
    result = idp.app.test_cli_runner().invoke(
        cli, ["audit", "erase-citizen", "999999", "--reason", "DPA request 20"]
    )

    assert result.exit_code == 0, result.output
