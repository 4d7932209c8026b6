"""The proved identity as stored: encrypted at rest, read only until it expires, erased with
the account."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import delete, select, text

from idp.accounts.identity.store import (
    UnreadableIdentity,
    current_identity,
    erase_identity,
    identity_level,
    save_identity,
)
from idp.extensions import db
from idp.models import Citizen, IdentityDisclosure, IdentityRecord

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
    "passport": [{"documentNumber": "321654987", "icaoIssuerCode": "GBR"}],
}


def test_a_saved_identity_reads_back_with_its_level_until_it_expires(app, make_citizen, clock):
    citizen = make_citizen()
    with app.app_context():
        assert identity_level(citizen["id"]) == "P0"
        assert current_identity(citizen["id"]) is None
        saved = save_identity(citizen["id"], "P2", DETAILS, "check-1")
        db.session.commit()
        identity = current_identity(citizen["id"])
        assert identity.details == DETAILS
        assert (identity.level, identity.reference) == ("P2", "check-1")
        assert identity.expires_at == saved.expires_at
        assert (saved.expires_at - saved.checked_at).days == 180
        assert identity_level(citizen["id"]) == "P2"
    clock.advance(181 * 86400)
    with app.app_context():
        assert current_identity(citizen["id"]) is None
        assert identity_level(citizen["id"]) == "P0"


def test_a_new_check_replaces_the_earlier_identity(app, make_citizen):
    citizen = make_citizen()
    with app.app_context():
        save_identity(citizen["id"], "P1", DETAILS, "check-1")
        save_identity(citizen["id"], "P2", {**DETAILS, "passport": []}, "check-2")
        db.session.commit()
        rows = db.session.scalars(
            select(IdentityRecord).where(IdentityRecord.citizen_id == citizen["id"])
        ).all()
        assert len(rows) == 1
        assert current_identity(citizen["id"]).level == "P2"
        assert current_identity(citizen["id"]).details["passport"] == []


def test_nothing_verified_is_readable_in_the_database(app, make_citizen):
    citizen = make_citizen()
    with app.app_context():
        save_identity(citizen["id"], "P2", DETAILS, "check-1")
        db.session.commit()
        stored = db.session.execute(
            text("SELECT details_encrypted FROM identity_record WHERE citizen_id = :id"),
            {"id": citizen["id"]},
        ).scalar()
    for secret in ("KENNETH", "DECERQUEIRA", "1965-07-08", "321654987"):
        assert secret not in stored


def test_details_under_another_key_are_refused_with_the_setting_named(app, make_citizen):
    citizen = make_citizen()
    with app.app_context():
        save_identity(citizen["id"], "P2", DETAILS, "check-1")
        db.session.commit()
    right = app.config["IDP_IDENTITY_FERNET"]
    app.config["IDP_IDENTITY_FERNET"] = Fernet(Fernet.generate_key())
    try:
        with app.app_context(), pytest.raises(UnreadableIdentity, match="IDENTITY_ENCRYPTION_KEY"):
            current_identity(citizen["id"])
    finally:
        app.config["IDP_IDENTITY_FERNET"] = right


def test_erasing_and_deleting_the_account_take_the_identity_with_them(app, make_citizen):
    kept, erased, deleted = (make_citizen(f"c{i}@example.com") for i in range(3))
    with app.app_context():
        for citizen in (kept, erased, deleted):
            save_identity(citizen["id"], "P2", DETAILS, f"check-{citizen['id']}")
            db.session.add(
                IdentityDisclosure(citizen_id=citizen["id"], client_id="dept", claim="address")
            )
        db.session.commit()
        erase_identity(erased["id"])
        db.session.execute(delete(Citizen).where(Citizen.id == deleted["id"]))
        db.session.commit()
        assert current_identity(kept["id"]) is not None
        for gone in (erased, deleted):
            assert current_identity(gone["id"]) is None
            assert not db.session.scalars(
                select(IdentityDisclosure).where(IdentityDisclosure.citizen_id == gone["id"])
            ).all()
