"""Passwords (NIST SP 800-63B 3.1.1.2): long and any character, never common, never guessable
from the account or the service, and never hashed when far too long."""

from __future__ import annotations

import pytest

from idp.security import passwords
from tests.support.browser import CitizenBrowser, error_beside

EMAIL = "ada.lovelace@example.com"
COMMON = "This password is on a list of common or breached passwords. Choose another one."
HAS_EMAIL = "Your password must not contain your email address"
HAS_LOCAL_PART = "Your password must not contain the part of your email address before the @"
HAS_SERVICE = "Your password must not contain the name of this service"
TOO_SHORT = "Your password must be at least 8 characters long"
TOO_LONG = "Your password must be 256 characters or fewer"
SIGN_IN_FAILED = "Enter the correct password for this email address"


@pytest.mark.parametrize(
    ("password", "email", "refusal"),
    [
        # Length, counted in characters (Unicode code points) of the NFKC form that is hashed,
        # not bytes.
        ("1234567", None, TOO_SHORT),
        ("🐉🔑🐉🔑🐉🔑🐉", None, TOO_SHORT),
        ("e\u0301" * 4, None, TOO_SHORT),  # 8 code points typed, stored as 4 characters "é"
        ("x" * 257, None, TOO_LONG),
        ("correct horse battery staple " * 9, None, TOO_LONG),
        ("ﷺ" * 15, None, TOO_LONG),  # 15 typed, 270 characters once NFKC spells each out
        ("e\u0301" * 1025, None, TOO_LONG),  # never normalised: over 4 times the maximum
        # Common and breached passwords, whatever their case, width or surrounding spaces.
        ("password1", None, COMMON),
        ("qwertyuiop", None, COMMON),
        ("iloveyou", None, COMMON),
        ("12345678", None, COMMON),
        ("trustno1", None, COMMON),
        ("p@ssw0rd", None, COMMON),
        ("PASSWORD1", None, COMMON),
        ("QwErTyUiOp", None, COMMON),
        ("ｉｌｏｖｅｙｏｕ", None, COMMON),  # fullwidth letters: NFKC makes them "iloveyou"
        ("  iloveyou  ", None, COMMON),
        # The account's own email address, or the part before the @.
        (EMAIL, EMAIL, HAS_EMAIL),
        ("Ada.Lovelace@Example.com", EMAIL, HAS_EMAIL),
        ("my address is ada.lovelace@example.com", EMAIL, HAS_EMAIL),
        ("ada.lovelace 1815", EMAIL, HAS_LOCAL_PART),
        ("ADA.LOVELACE rules OK", EMAIL, HAS_LOCAL_PART),
        ("ａｄａ．ｌｏｖｅｌａｃｅ forever", EMAIL, HAS_LOCAL_PART),
        ("kate.smith hunter", "kate.smith@example.org", HAS_LOCAL_PART),
        # The service's own name.
        ("my government sign in password", None, HAS_SERVICE),
        ("Government Sign In 2024", None, HAS_SERVICE),
        ("GovernmentSignIn!!", None, HAS_SERVICE),
        ("I love GOV.UK so much", None, HAS_SERVICE),
        ("govuk forever and ever", None, HAS_SERVICE),
        ("ｇｏｖ．ｕｋ rocks my world", None, HAS_SERVICE),
    ],
)
def test_the_policy_refuses_with_a_reason(app, password, email, refusal):
    with app.app_context(), pytest.raises(passwords.PasswordPolicyError) as raised:
        passwords.check_password_policy(password, email=email)
    assert str(raised.value) == refusal


@pytest.mark.parametrize(
    ("password", "email"),
    [
        ("vq8#Lm2z", None),
        ("a long passphrase with spaces and emoji 🐉🔑 ✓", EMAIL),
        ("Mae hen wlad fy nhadau yn annwyl i mi", EMAIL),
        ("   leading and trailing spaces are kept   ", None),
        ("🐉🔑🐉🔑🐉🔑🐉🔑", None),
        ("é" * 64, None),
        ("correct horse battery staple " * 7 + "abcdefghijklmnopqrstuvwxyz", None),
        ("x" * 256, None),
        ("e\u0301" * 256, None),  # 512 code points typed, 256 characters stored
        # A common password inside a longer passphrase is fine: only the whole one is listed.
        ("password1 is not my password any more", EMAIL),
        # A short local part (under 4 characters) is too common to refuse inside a password.
        ("always alert, always ready", "al@example.com"),
        # Words that merely touch the service's name.
        ("the government signing ceremony", None),
        ("gov uk is not spelt like that", None),
    ],
)
def test_the_policy_accepts_long_and_unusual_passwords(app, password, email):
    with app.app_context():
        passwords.check_password_policy(password, email=email)


def test_the_common_password_list_is_loaded_once_from_zxcvbn():
    listed = passwords.common_passwords()
    assert len(listed) == 30_000
    assert passwords.common_passwords() is listed
    assert "password1" in listed


def sign_up(idp, fields: dict[str, str], lang: str | None = None):
    """Fill in the sign-up page reached directly, optionally in another language."""
    browser = CitizenBrowser(idp.issuer)
    page = browser.get(idp.url("/sign-up" + (f"?lang={lang}" if lang else "")))
    assert page.status_code == 200
    return browser.sign_up(idp, page, fields)


def sign_up_fields(password: str, email: str = EMAIL) -> dict[str, str]:
    return {"email": email, "password": password, "confirm": password}


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("iloveyou", COMMON),
        ("Password1", COMMON),
        ("ada.lovelace@example.com", HAS_EMAIL),
        ("ada.lovelace was here", HAS_LOCAL_PART),
        ("my gov.uk password", HAS_SERVICE),
    ],
)
def test_sign_up_says_why_a_password_is_refused_beside_the_password_field(idp, password, message):
    response = sign_up(idp, sign_up_fields(password))
    assert response.status_code == 400
    # In the error summary, linked to the password field, and on the field itself.
    assert f'<a href="#password">{message}</a>' in response.text
    assert error_beside(response.text, "password") == message
    assert not any(h.startswith("idp_session=") for h in response.headers.get_list("set-cookie"))


def test_sign_up_explains_a_refused_password_in_welsh(idp):
    response = sign_up(idp, sign_up_fields("qwertyuiop"), lang="cy")
    assert response.status_code == 400
    assert '<html lang="cy" ' in response.text
    assert "Mae’r cyfrinair hwn ar restr o gyfrineiriau cyffredin" in response.text


def test_sign_up_accepts_a_long_passphrase_with_spaces_and_emoji(idp):
    passphrase = "a long passphrase, with spaces and emoji 🐉🔑 " * 5
    response = sign_up(idp, sign_up_fields(passphrase))
    assert response.status_code == 303
    assert any(h.startswith("idp_session=") for h in response.headers.get_list("set-cookie"))


def test_sign_up_refuses_an_oversized_password_without_hashing_it(idp, monkeypatch):
    from idp.accounts import citizens

    hashed: list[str] = []
    monkeypatch.setattr(citizens, "hash_password", lambda p: hashed.append(p) or "unused")
    response = sign_up(idp, sign_up_fields("a very long passphrase " * 1000))
    assert response.status_code == 400
    assert f'<a href="#password">{TOO_LONG}</a>' in response.text
    assert hashed == []


class RecordingHasher:
    """Stands in for password_hasher(): the real hasher, noting every password it is given."""

    def __init__(self, hasher):
        self.hasher = hasher
        self.seen: list[str] = []

    def __call__(self) -> RecordingHasher:
        return self

    def hash(self, password: str) -> str:
        self.seen.append(password)
        return self.hasher.hash(password)

    def verify(self, password_hash: str, password: str) -> bool:
        self.seen.append(password)
        return self.hasher.verify(password_hash, password)

    def check_needs_rehash(self, password_hash: str) -> bool:
        return self.hasher.check_needs_rehash(password_hash)


def test_an_oversized_password_at_sign_in_is_an_ordinary_failure_and_never_hashed(
    idp, make_citizen, monkeypatch
):
    citizen = make_citizen(EMAIL)
    with idp.app.app_context():
        recorder = RecordingHasher(passwords.password_hasher())
    monkeypatch.setattr(passwords, "password_hasher", recorder)
    oversized = citizen["password"] + " " + "x" * 20_000
    browser = CitizenBrowser(idp.issuer)
    page = browser.get(idp.url("/sign-in"))
    response = browser.submit_sign_in(page, EMAIL, oversized)
    assert response.status_code == 400
    assert SIGN_IN_FAILED in response.text
    assert not any(h.startswith("idp_session=") for h in response.headers.get_list("set-cookie"))
    # One hash of a fixed stand-in, so the failure takes the usual time; never the input.
    assert len(recorder.seen) == 1
    assert oversized not in recorder.seen


def test_a_one_megabyte_sign_in_gets_a_clear_page_not_a_server_error(idp):
    browser = CitizenBrowser(idp.issuer)
    page = browser.get(idp.url("/sign-in"))
    response = browser.submit_sign_in(page, EMAIL, "x" * 1_000_000)
    assert response.status_code == 413
    assert "The form you sent is too large. Go back and try again." in response.text
    assert "Internal Server Error" not in response.text


# -- Department and service names; NFKC -------------------------------------------------------


def test_a_department_or_service_name_is_refused_in_a_new_password(idp, make_client):
    from idp.extensions import db
    from idp.models import Department

    make_client("hmrc-tax", client_name="HMRC: Your tax account")
    with idp.app.app_context():
        db.session.add(Department(name="Department for Education"))
        db.session.commit()
    for password, word in [
        ("my tax password is long", "tax"),
        ("hmrc knows all my secrets", "hmrc"),
        ("HMRCYourTaxAccount rocks", "hmrc: your tax account"),
        ("education is the key to it", "education"),
    ]:
        response = sign_up(idp, sign_up_fields(password))
        assert response.status_code == 400, password
        message = (
            "Your password must not contain the name of a government department or service"
            f" (“{word}”)"
        )
        assert message in response.text.replace("&#34;", '"'), (password, response.text[:2000])
    # A significant word counts as a whole word only; common words of names do not count.
    for n, password in enumerate(("syntax highlighting forever", "your account of the journey")):
        response = sign_up(idp, sign_up_fields(password, email=f"names.{n}@example.com"))
        assert "department or service" not in response.text, password


def test_a_password_is_the_same_composed_or_decomposed(idp, make_citizen):
    composed = "café crème every single morning"
    decomposed = "cafe\u0301 cre\u0300me every single morning"
    citizen = make_citizen("nfkc.one@example.com", password=composed)
    browser = CitizenBrowser(idp.issuer)
    page = browser.sign_in(browser.get(idp.url("/sign-in")), citizen["email"], decomposed)
    assert SIGN_IN_FAILED not in page.text
    assert page.url.path == "/", page.url


def test_a_hash_of_the_raw_password_still_verifies_and_is_replaced(idp, make_citizen):
    from idp.extensions import db
    from idp.models import Citizen

    raw = "ｆｕｌｌ ｗｉｄｔｈ passphrase here"  # its NFKC form is "full width passphrase here"
    citizen = make_citizen("nfkc.two@example.com", password="a placeholder passphrase")
    with idp.app.app_context():
        row = db.session.get(Citizen, citizen["id"])
        # Stored before passwords were normalised: the hash of the password as typed.
        row.password_hash = passwords.password_hasher().hash(raw)
        db.session.commit()
    browser = CitizenBrowser(idp.issuer)
    page = browser.sign_in(browser.get(idp.url("/sign-in")), citizen["email"], raw)
    assert page.url.path == "/", page.text[:500]
    with idp.app.app_context():
        stored = db.session.get(Citizen, citizen["id"]).password_hash
        # Rehashed in the normalised form: the half-width spelling now signs in too.
        assert passwords.password_hasher().verify(stored, "full width passphrase here")
