"""Exports of the audit record (CSV or JSON Lines, and a manifest) verify offline, with no
database: the signed checkpoint, the chain of hashes up to it, the record of the export itself
and every row. One changed byte anywhere in the entries or the manifest is found and named."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from pathlib import Path

import pytest

from idp import audit
from idp.audit import export
from idp.audit.export import export_to_file, verify_export
from idp.audit.queries import Filters
from idp.cli import cli
from idp.extensions import db
from idp.models import AuditEntry
from idp.models.timestamps import utcnow
from tests.audit.test_auditor_pages import auditor, record, stored  # noqa: F401 - fixture

pytestmark = pytest.mark.both_databases

FORMATS = ("csv", "jsonl")


def exported(idp, tmp_path: Path, fmt: str, filters: Filters | None = None, name: str = "x"):
    """Export as the command line would; the .zip's path and what the export said."""
    path = tmp_path / f"{name}.{fmt}.zip"
    with idp.app.app_context():
        summary = export_to_file(filters or Filters(), fmt, path, actor={"via": "test"})
    return path, summary


def members(path_or_bytes) -> dict[str, bytes]:
    """The files in an export."""
    source = io.BytesIO(path_or_bytes) if isinstance(path_or_bytes, bytes) else path_or_bytes
    with zipfile.ZipFile(source) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def rezip(files: dict[str, bytes]) -> bytes:
    """An export with these files (as someone who edited one would make it)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def changed(data: bytes, position: int) -> bytes:
    """data with one byte changed."""
    replacement = b"0" if data[position : position + 1] != b"0" else b"1"
    return data[:position] + replacement + data[position + 1 :]


def rows_of(files: dict[str, bytes], fmt: str) -> list[dict]:
    """The exported rows, as a reader of the format sees them."""
    text = files[f"entries.{fmt}"].decode()
    if fmt == "jsonl":
        return [json.loads(line) for line in text.splitlines()]
    return list(csv.DictReader(io.StringIO(text, newline="")))


def some_events(idp) -> list[int]:
    """A few events of two citizens, interleaved, from requests; their seqs."""
    made = []
    for n in range(6):
        made.append(
            record(
                idp,
                "test.event",
                ip=f"203.0.113.{n}",
                citizen_id=7 if n % 2 else 8,
                client_id="dept-a",
                n=n,
                nested={"list": [1, 2], "text": "ünïcödé ✓"},
            )
        )
    return made


@pytest.mark.parametrize("fmt", FORMATS)
def test_an_export_verifies_offline(idp, tmp_path, fmt):
    made = some_events(idp)

    path, summary = exported(idp, tmp_path, fmt)
    report = verify_export(path)

    assert report.ok, report.problem
    assert (report.count, report.first_seq, report.last_seq) == (made[-1], 1, made[-1])
    assert summary.export_seq > made[-1] and summary.checkpoint_seq >= summary.export_seq
    assert f"signed by audit key {report.key_id}" in report.summary
    files = members(path)
    assert sorted(files) == sorted(["manifest.json", f"entries.{fmt}"])
    rows = rows_of(files, fmt)
    assert [int(r["seq"]) for r in rows] == list(range(1, made[-1] + 1))
    assert set(rows[0]) == set(export.COLUMNS)
    manifest = json.loads(files["manifest.json"])
    assert manifest["export"]["entries"]["count"] == len(rows)
    assert manifest["checkpoint"]["public_jwk"]["kid"] == report.key_id
    # The export was recorded, with what the manifest says about it.
    (recorded,) = stored(idp, "audit.exported")
    assert recorded.seq == summary.export_seq
    assert recorded.details["export"] == manifest["export"]
    assert recorded.details["via"] == "test"
    # And from its bytes too.
    assert verify_export(path.read_bytes()).ok


@pytest.mark.parametrize("fmt", FORMATS)
def test_one_changed_byte_in_the_entries_fails_and_is_named(idp, tmp_path, fmt):
    some_events(idp)
    path, _ = exported(idp, tmp_path, fmt)
    files = members(path)
    entries = files[f"entries.{fmt}"]
    first_row = entries.index(b"\n") + 1  # after the header (CSV) or the first entry (JSON)
    positions = [0, 5, first_row + 1, first_row + 30, len(entries) // 2, len(entries) - 3]
    positions.append(entries.index(b"203.0.113.3"))
    positions.append(entries.index("ünïcödé".encode()))

    for position in positions:
        report = verify_export(rezip({**files, f"entries.{fmt}": changed(entries, position)}))

        assert not report.ok, position
        assert report.file == f"entries.{fmt}", (position, report.problem)
        assert f"entries.{fmt}" in report.problem
    # A change to a row's values names the entry too.
    report = verify_export(
        rezip({**files, f"entries.{fmt}": entries.replace(b"203.0.113.3", b"203.0.113.9")})
    )
    assert "entry 4" in report.problem and report.seq == 4, report.problem
    # A row taken out, or one added.
    lines = entries.splitlines(keepends=True)
    for edited in (b"".join(lines[:-1]), entries + lines[-1]):
        report = verify_export(rezip({**files, f"entries.{fmt}": edited}))
        assert not report.ok and report.file == f"entries.{fmt}", report.problem


@pytest.mark.parametrize("fmt", FORMATS)
def test_one_changed_byte_in_the_manifest_fails_and_is_named(idp, tmp_path, fmt):
    some_events(idp)
    path, _ = exported(idp, tmp_path, fmt)
    files = members(path)
    manifest = files["manifest.json"]
    text = manifest.decode()
    places = {
        "first byte": 0,
        "indentation": text.index('\n "') + 1,
        "created": text.index('"created": "') + 20,
        "filters": text.index('"filters": {') + 3,
        "count": text.index('"count": ') + 9,
        "entries sha256": text.index('"sha256": "') + 15,
        "a content hash": text.index('"content_hashes": [') + 30,
        "the last content hash": text.rindex('"\n  ],') - 2,
        "chain prev_hash": text.index('"prev_hash": "') + 20,
        "checkpoint head": text.index('"head_hash": "') + 14,
        "checkpoint seq": text.index('"seq": ', text.index('"checkpoint"')) + 7,
        "signature": text.index('"signature": "') + 40,
        "key x": text.index('"x": "') + 8,
        "key use": text.index('"use": "') + 1,
        "issuer": text.index('"issuer": "') + 16,
        "export entry event": text.index('"event": "audit.exported"') + 15,
        "export entry hash": text.index('"entry_hash": "', text.index('"export_entry"')) + 20,
        "export entry prev_hash": text.index('"prev_hash": "', text.index('"export_entry"')) + 20,
        "export entry seq": text.index('"seq": ', text.index('"export_entry"')) + 7,
        "chain start": text.index('"from_seq": ') + 12,
        "up to": text.index('"up_to_seq": ') + 13,
        "last byte": len(manifest) - 1,
    }

    for place, position in places.items():
        report = verify_export(rezip({**files, "manifest.json": changed(manifest, position)}))

        assert not report.ok, place
        assert report.file == "manifest.json", (place, report.problem)
        assert "manifest.json" in report.problem, (place, report.problem)


def test_a_filtered_export_of_one_citizen_verifies(idp, tmp_path):
    made = some_events(idp)
    record(idp, "test.other", citizen_id=8)

    expected = made[1::2]
    for fmt in FORMATS:
        path, summary = exported(idp, tmp_path, fmt, Filters(citizen_id=7), name="citizen-7")
        report = verify_export(path)
        assert report.ok, report.problem
        rows = rows_of(members(path), fmt)
        assert [int(r["seq"]) for r in rows] == expected
        assert {str(r["citizen_id"]) for r in rows} == {"7"}
        manifest = json.loads(members(path)["manifest.json"])
        # The citizen's id is not in the manifest (nor in the hashed details of the export's
        # entry): only in that entry's citizen_id column, which an erasure clears.
        assert manifest["export"]["filters"] == {"citizen_filter": True}
        (recorded,) = [e for e in stored(idp, "audit.exported") if e.seq == summary.export_seq]
        assert recorded.citizen_id == 7
        # Every entry from the first exported one to the checkpoint links, exported or not.
        hashes = manifest["chain"]["content_hashes"]
        assert len(hashes) == summary.checkpoint_seq - made[1] + 1
        # The next export about this citizen lists this one.
        expected = [*expected, summary.export_seq]


def test_exports_stream_in_batches(idp, tmp_path, monkeypatch):
    made = [record(idp, "test.many", citizen_id=n % 4, n=n) for n in range(40)]
    monkeypatch.setattr(export, "BATCH", 3)

    path, summary = exported(idp, tmp_path, "jsonl", Filters(citizen_id=1))

    assert verify_export(path).ok
    assert [int(r["seq"]) for r in rows_of(members(path), "jsonl")] == made[1::4]
    assert summary.count == 10


def test_erased_and_awkward_entries_verify(idp, tmp_path):
    awkward = [
        record(idp, "test.text", ip="203.0.113.1", user_agent='=HYPERLINK("x")', reason=""),
        record(idp, "test.text", ip="203.0.113.2", user_agent="'quoted", reason="-1"),
        record(idp, "test.text", ip="203.0.113.3", user_agent='a,b\r\nc "d"', reason="@x"),
    ]
    erased = record(idp, "test.erased", ip="203.0.113.4", citizen_id=99)
    with idp.app.app_context():
        row = db.session.get(AuditEntry, erased)
        row.citizen_id = row.ip = row.user_agent = row.personal_salt = None
        row.erased_at = utcnow()
        db.session.commit()

    for fmt in FORMATS:
        path, _ = exported(idp, tmp_path, fmt)
        report = verify_export(path)
        assert report.ok, (fmt, report.problem)
        rows = {int(r["seq"]): r for r in rows_of(members(path), fmt)}
        if fmt == "csv":
            # Text a spreadsheet would run as a formula starts with an apostrophe.
            assert rows[awkward[0]]["user_agent"] == '\'=HYPERLINK("x")'
            assert rows[awkward[0]]["reason"] == "'"  # empty text, not a missing value
            assert rows[awkward[1]]["user_agent"] == "''quoted"
            assert rows[erased]["ip"] == "" and rows[erased]["personal_salt"] == ""
        else:
            assert rows[awkward[0]]["reason"] == ""
            assert rows[erased]["ip"] is None and rows[erased]["erased_at"]


def test_an_altered_record_is_not_exported(idp, tmp_path):
    made = some_events(idp)
    with idp.app.app_context():
        db.session.execute(
            db.update(AuditEntry).where(AuditEntry.seq == made[2]).values(event="test.innocent")
        )
        db.session.commit()

    # The record no longer verifies, so no checkpoint is signed and nothing is exported.
    with pytest.raises(export.ExportError, match="entry 3 was edited"):
        exported(idp, tmp_path, "csv")


def test_an_export_of_nothing_still_verifies(idp, tmp_path):
    some_events(idp)

    path, summary = exported(idp, tmp_path, "csv", Filters(event="test.never"))
    report = verify_export(path)

    assert report.ok, report.problem
    assert report.count == summary.count == 0
    assert "no entries" in report.summary


def test_other_files_are_refused_plainly(idp, tmp_path):
    some_events(idp)
    path, _ = exported(idp, tmp_path, "csv")
    files = members(path)

    for source, words in (
        (b"not a zip", "not a .zip export"),
        (path.read_bytes()[:-30], "not a .zip export"),
        (rezip({"entries.csv": files["entries.csv"]}), "no manifest.json"),
        (rezip({"manifest.json": files["manifest.json"]}), "manifest.json and one entries file"),
        (rezip({**files, "extra.txt": b"hello"}), "manifest.json and one entries file"),
    ):
        report = verify_export(source)
        assert not report.ok and words in report.problem, report.problem
    other = dict(json.loads(files["manifest.json"]))
    report = verify_export(rezip({**files, "manifest.json": json.dumps(other).encode()}))
    assert "not in the form the IdP writes" in report.problem
    # A key the verifier was told to insist on.
    report = verify_export(path, public_jwk={"kty": "EC", "crv": "P-256", "x": "a", "y": "b"})
    assert "not signed by the audit key you gave" in report.problem


def test_an_auditor_downloads_an_export_that_verifies(idp, auditor, tmp_path):  # noqa: F811
    made = some_events(idp)
    page = auditor.http.get("/staff/audit", params={"citizen": "7"})
    action = "/staff/audit/export?format=jsonl&amp;citizen=7"
    assert f'action="{action}"' in page.text

    download = auditor.submit(
        page, {}, action="/staff/audit/export", button="Download as JSON Lines"
    )

    assert download.status_code == 200
    assert download.headers["content-type"] == "application/zip"
    assert download.headers["cache-control"] == "no-store"
    disposition = download.headers["content-disposition"]
    assert disposition.startswith("attachment;") and "-jsonl.zip" in disposition
    report = verify_export(download.content)
    assert report.ok, report.problem
    # The citizen's entries, and the auditor's view of them (recorded under the citizen's id).
    (viewed,) = stored(idp, "audit.viewed")
    assert viewed.citizen_id == 7 and viewed.details["filters"] == {"citizen_filter": True}
    rows = rows_of(members(download.content), "jsonl")
    assert [int(r["seq"]) for r in rows] == [*made[1::2], viewed.seq]
    (recorded,) = stored(idp, "audit.exported")
    assert recorded.details["via"] == "auditor page"
    assert recorded.details["export"]["filters"] == {"citizen_filter": True}
    assert recorded.citizen_id == 7
    assert isinstance(recorded.details["staff_id"], int)
    assert recorded.ip == "127.0.0.1"


def test_a_bad_export_request_exports_nothing(idp, auditor):  # noqa: F811
    page = auditor.get("/staff/audit")
    token = page.text.split('name="csrf_token" type="hidden" value="', 1)[1].split('"', 1)[0]

    for query in ("format=xml", "format=csv&citizen=abc", "format=csv&start=2025-02-30"):
        response = auditor.http.post(f"/staff/audit/export?{query}", data={"csrf_token": token})
        assert response.status_code == 400, query
        assert "Nothing was exported" in response.text
    assert stored(idp, "audit.exported") == []


def test_idp_audit_verify_checks_an_export_file(idp, tmp_path):
    some_events(idp)
    path, _ = exported(idp, tmp_path, "csv")
    runner = idp.app.test_cli_runner()

    good = runner.invoke(cli, ["audit", "verify", "--export", str(path)])
    files = members(path)
    bad_path = tmp_path / "bad.zip"
    bad_path.write_bytes(rezip({**files, "entries.csv": changed(files["entries.csv"], 200)}))
    bad = runner.invoke(cli, ["audit", "verify", "--export", str(bad_path)])

    assert good.exit_code == 0, good.output
    assert "verifies" in good.output
    assert bad.exit_code != 0
    assert "entries.csv was altered" in bad.output


@pytest.mark.parametrize("fmt", FORMATS)
def test_no_changed_byte_anywhere_in_the_zip_verifies(idp, tmp_path, fmt):
    """Every byte of the .zip counts, not only its entries: one changed byte anywhere (headers,
    times, flags, the central directory), or bytes added before or after, and it fails, with
    a report, never an exception."""
    record(idp, "test.small", citizen_id=7)
    path, _ = exported(idp, tmp_path, fmt)
    original = path.read_bytes()
    assert verify_export(original).ok
    verified, altered_outside = [], 0
    for position in range(len(original)):
        for flip in (0x01, 0x80):
            data = bytearray(original)
            data[position] ^= flip
            report = verify_export(bytes(data))
            if report.ok:
                verified.append((position, flip))
            altered_outside += export.ZIP_ALTERED in (report.problem or "")
    assert verified == []
    # Changes that leave every member readable (times, versions, attributes) are still found.
    assert altered_outside > 0
    for altered in (b"x" + original, original + b"\0", b"PK\x03\x04" + original, original * 2):
        report = verify_export(altered)
        assert not report.ok
        assert export.ZIP_ALTERED in report.problem or "damaged" in report.problem, report.problem


def test_an_erasure_leaves_no_trace_of_a_filtered_citizen_or_ip(idp, auditor, tmp_path):  # noqa: F811
    """Views and exports filtered on a citizen or an IP address keep those values only in the
    erasable columns (citizen_id, ip, user_agent), so erase-citizen removes every trace."""
    from idp.audit.maintenance import erase_citizen

    citizen, address = 987654, "198.51.100.77"
    record(idp, "test.event", citizen_id=citizen, ip=address)
    page = auditor.http.get("/staff/audit", params={"citizen": str(citizen), "ip": address})
    assert page.status_code == 200
    download = auditor.submit(
        page, {}, action="/staff/audit/export", button="Download as JSON Lines"
    )
    assert download.status_code == 200
    exported(idp, tmp_path, "csv", Filters(citizen_id=citizen, ip=address))
    viewed = stored(idp, "audit.viewed")[-1]
    assert viewed.details["filters"] == {"citizen_filter": True, "ip_filter": True}

    with idp.app.app_context():
        erase_citizen(citizen, "data protection request DP-1")
        rows = db.session.execute(db.select(AuditEntry.__table__)).all()
    erasable = {"citizen_id", "ip", "user_agent", "personal_salt"}
    for row in rows:
        for column, value in row._mapping.items():
            if column in erasable:
                continue
            text = json.dumps(value, default=str)
            assert str(citizen) not in text and address not in text, (row.seq, column, text)
        assert row.citizen_id != citizen


@pytest.mark.parametrize("fmt", FORMATS)
def test_an_export_of_entries_from_before_and_after_the_version_verifies(
    idp, tmp_path, fmt, monkeypatch
):
    monkeypatch.setattr(audit, "_SOFTWARE_VERSION", None)  # written by the earlier release
    record(idp, "test.old")
    monkeypatch.undo()
    record(idp, "test.new")

    path, _ = exported(idp, tmp_path, fmt)

    assert verify_export(path).ok
    rows = {r["event"]: r for r in rows_of(members(path), fmt)}
    assert rows["test.old"]["software_version"] in (None, "")
    assert rows["test.new"]["software_version"] == audit.software_version()
