"""Exports of the audit record that anyone can verify offline, without the database.

An export is one .zip holding:

- entries.csv or entries.jsonl: the entries the filters matched, oldest first, with every field
  a verifier needs to recompute each entry's hashes;
- manifest.json: what was exported ("export": filters (a citizen id or IP address filter only
  as used, never its value), format, times, the entries file's
  SHA-256, the audit key), the chain from the first exported entry up to a signed checkpoint
  ("chain": the first entry's prev_hash and the content hash of every entry on the way, exported
  or not, so entries that were filtered out still link), that checkpoint, and the entry that
  recorded this export ("export_entry").

The export records itself: the "audit.exported" entry holds the manifest's "export" part, and
the checkpoint is signed after it, so the signature covers what the manifest says about the
export as well as every entry. verify_export walks the chain hashes to the signed head, checks
the signature with the key in the manifest, finds the export's own entry on the way, and checks
the entries file against its SHA-256 and each row against its hash. The manifest is written in
one canonical form, so even a changed space is noticed. Whoever checks an export should also
check that the key id it reports is the IdP's audit key (`idp audit public-key`).
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import os
import uuid
import zipfile
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from joserfc.errors import JoseError
from joserfc.jwk import import_key

from idp import audit
from idp.audit.chain import (
    CONTENT_FIELDS,
    content_hash,
    entry_hash,
    fields_of,
    format_time,
    personal_digest,
)
from idp.audit.checkpoints import CheckpointError, audit_key, make_checkpoint, verify_signature
from idp.audit.linker import link_pending
from idp.audit.queries import Filters, entry_batches
from idp.extensions import db
from idp.models import AuditEntry, AuditHead
from idp.models.timestamps import utcnow
from idp.settings import current_settings

VERSION = 2
FORMATS = ("csv", "jsonl")
ENTRIES_FILES = {"csv": "entries.csv", "jsonl": "entries.jsonl"}
MANIFEST = "manifest.json"
EXPORTED_EVENT = "audit.exported"
BATCH = 1000
# The columns of the entries file, in order.
COLUMNS = (
    *CONTENT_FIELDS,
    "citizen_id",
    "ip",
    "user_agent",
    "personal_salt",
    "personal_digest",
    "erased_at",
    "prev_hash",
    "entry_hash",
)
INTEGER_COLUMNS = frozenset({"seq", "citizen_id"})
# CSV: a text cell that a spreadsheet would run as a formula (or that is empty text, or starts
# with the escape itself) gets a leading apostrophe; a reader removes exactly one. An empty
# cell is a missing value (None), so "" and None stay apart.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "'")
CSV_ESCAPE = "'"
# How the .zip is written, always the same way (see _ExportZip): the same entries and manifest
# give the same bytes, so a verifier rebuilds the .zip and insists on every byte. Members are
# stored, not compressed: deflate's output differs between zlib builds (zlib-ng, for one), so a
# compressed export could not be rebuilt byte for byte everywhere.
ZIP_TIME = (1980, 1, 1, 0, 0, 0)
ZIP_COMPRESSION = zipfile.ZIP_STORED
ZIP_SYSTEM = 3  # Unix
ZIP_ATTRIBUTES = 0o100644 << 16  # a regular file, rw-r--r--
ZIP_ALTERED = "the zip file itself was altered outside its entries"
COPY_BLOCK = 1 << 20
# Where the content hashes go while the manifest is serialised (streamed in place of it).
_HASHES_PLACEHOLDER = "@@content-hashes@@"


class ExportError(Exception):
    """An export cannot be made; the message says why."""


@dataclass
class ExportSummary:
    """What an export holds."""

    format: str
    created: str
    count: int
    first_seq: int | None
    last_seq: int | None
    export_seq: int
    checkpoint_seq: int
    entries_sha256: str

    @property
    def download_name(self) -> str:
        """A file name for the .zip: audit-export-20250314T093000Z-csv.zip."""
        moment = self.created[:19].replace("-", "").replace(":", "")
        return f"audit-export-{moment}Z-{self.format}.zip"


@dataclass
class ExportReport:
    """What verify_export found: ok, or the first problem, the file it is in and the entry."""

    problem: str | None = None
    file: str | None = None
    seq: int | None = None
    format: str | None = None
    created: str | None = None
    count: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    checkpoint_seq: int | None = None
    key_id: str | None = None

    @property
    def ok(self) -> bool:
        """No problem found."""
        return self.problem is None

    @property
    def summary(self) -> str:
        """One line on what verified."""
        if not self.ok:
            return f"does not verify: {self.problem}"
        entries = (
            f"{self.count} entries ({self.first_seq} to {self.last_seq})"
            if self.count
            else "no entries"
        )
        return (
            f"{entries} exported at {self.created} as {self.format}, linked to the checkpoint "
            f"of entry {self.checkpoint_seq} signed by audit key {self.key_id} (check that this "
            "is the IdP's audit key: idp audit public-key)"
        )


class _Problem(Exception):
    """The first thing wrong with an export: in plain words, which file, which entry."""

    def __init__(self, message: str, file: str | None = None, seq: int | None = None):
        super().__init__(message)
        self.file = file
        self.seq = seq


# -- Writing ------------------------------------------------------------------------------------


class _Stream:
    """A binary file seen only as a stream (no tell, no seek), so zipfile writes the same bytes
    whatever the target: sizes in data descriptors after each member, offsets from 0."""

    def __init__(self, target: IO[bytes]):
        self._target = target

    def write(self, data: bytes) -> int:
        """Pass the bytes on."""
        return self._target.write(data)

    def flush(self) -> None:
        """Flush the target, if it can be."""
        flush = getattr(self._target, "flush", None)
        if flush is not None:
            flush()


class _ExportZip:
    """The one way an export's .zip is written, by the export and again by a verifier: members
    in the order they are added, each with a fixed time, system, attributes and compression."""

    def __init__(self, target: IO[bytes]):
        self._archive = zipfile.ZipFile(_Stream(target), "w", compression=ZIP_COMPRESSION)

    def member(self, name: str) -> IO[bytes]:
        """A new member to write to (close it before the next)."""
        info = zipfile.ZipInfo(name, date_time=ZIP_TIME)
        info.compress_type = ZIP_COMPRESSION
        info.create_system = ZIP_SYSTEM
        info.external_attr = ZIP_ATTRIBUTES
        return self._archive.open(info, "w", force_zip64=True)

    def close(self) -> None:
        """Write the central directory."""
        self._archive.close()

    def __enter__(self) -> _ExportZip:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()


def export_to_file(
    filters: Filters, fmt: str, path: str | os.PathLike[str], *, actor: dict[str, Any] | None = None
) -> ExportSummary:
    """Write an export of the entries the filters match (fmt "csv" or "jsonl") to path, a .zip.
    actor says who exported, for the record (e.g. {"staff_id": 3} or {"via": "cli"})."""
    with Path(path).open("wb") as target:
        return write_export(filters, fmt, target, actor=actor)


def write_export(
    filters: Filters, fmt: str, target: IO[bytes], *, actor: dict[str, Any] | None = None
) -> ExportSummary:
    """Write an export to a binary file (seekable is best), a batch of entries at a time."""
    if fmt not in FORMATS:
        raise ExportError(f"the format must be one of {', '.join(FORMATS)}")
    db.session.commit()  # read the record as it is now, every entry recorded so far chained
    link_pending()
    key = dict(audit_key().public_jwk)
    up_to = db.session.scalar(db.select(AuditHead.seq).where(AuditHead.id == 1)) or 0
    created = format_time(utcnow())
    with _ExportZip(target) as archive:
        entries = _write_entries(archive, filters, fmt, up_to)
        descriptor = {
            "version": VERSION,
            "id": uuid.uuid4().hex,
            "issuer": current_settings().issuer,
            "created": created,
            "format": fmt,
            "filters": filters.describe(),
            "up_to_seq": up_to,
            "entries": entries,
            "audit_key": key,
        }
        recorded = _record_export(descriptor, up_to, actor or {}, filters.citizen_id)
        try:
            checkpoint = make_checkpoint()
        except CheckpointError as exc:
            raise ExportError(f"{exc} (run idp audit verify)") from None
        if checkpoint is None or checkpoint.key_id != key.get("kid"):
            raise ExportError("the audit key changed while exporting: export again")
        chain_from = entries["first_seq"] if entries["count"] else recorded.seq
        _write_manifest(archive, descriptor, recorded, checkpoint, chain_from)
    return ExportSummary(
        format=fmt,
        created=created,
        count=entries["count"],
        first_seq=entries["first_seq"],
        last_seq=entries["last_seq"],
        export_seq=recorded.seq,
        checkpoint_seq=checkpoint.seq,
        entries_sha256=entries["sha256"],
    )


def _write_entries(archive: _ExportZip, filters: Filters, fmt: str, up_to: int) -> dict[str, Any]:
    """The entries file, streamed; what the manifest says about it."""
    name = ENTRIES_FILES[fmt]
    digest = hashlib.sha256()
    count, first, last = 0, None, None
    with archive.member(name) as member:

        def write(text: str) -> None:
            data = text.encode("utf-8")
            digest.update(data)
            member.write(data)

        if fmt == "csv":
            write(_csv_text([list(COLUMNS)]))
        for rows in entry_batches(filters, up_to, BATCH):
            records = [entry_record(row) for row in rows]
            if fmt == "csv":
                write(_csv_text([[_csv_cell(r[c], c) for c in COLUMNS] for r in records]))
            else:
                write("".join(_jsonl_line(r) for r in records))
            count += len(records)
            first = records[0]["seq"] if first is None else first
            last = records[-1]["seq"]
    return {
        "file": name,
        "count": count,
        "first_seq": first,
        "last_seq": last,
        "sha256": digest.hexdigest(),
    }


def entry_record(row: Any) -> dict[str, Any]:
    """One entry as exported: every column in COLUMNS, times as the chain hashes them."""
    record = {name: getattr(row, name) for name in COLUMNS}
    record["time"] = format_time(row.time)
    record["erased_at"] = format_time(row.erased_at) if row.erased_at else None
    record["details"] = row.details or {}
    return record


def _csv_text(rows: Iterable[Sequence[str]]) -> str:
    """CSV lines (RFC 4180, CRLF) for rows of cells."""
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    return buffer.getvalue()


def _csv_cell(value: Any, column: str) -> str:
    """A value as a CSV cell: numbers as digits, details as JSON, text escaped."""
    if value is None:
        return ""
    if column in INTEGER_COLUMNS:
        return str(int(value))
    text = _json(value) if column == "details" else str(value)
    return CSV_ESCAPE + text if text == "" or text.startswith(FORMULA_STARTS) else text


def _jsonl_line(record: dict[str, Any]) -> str:
    """One entry as a JSON object on one line (its fields in COLUMNS order)."""
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"


def _json(value: Any) -> str:
    """Compact JSON with sorted keys."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def _record_export(
    descriptor: dict[str, Any], up_to: int, actor: dict[str, Any], citizen_id: int | None
) -> AuditEntry:
    """Record the export (its descriptor in the entry's details, the citizen it was filtered
    on, if any, in the entry's erasable citizen_id column); the entry written."""
    audit.record(EXPORTED_EVENT, export=descriptor, citizen_id=citizen_id, **actor)
    db.session.commit()
    link_pending()
    candidates = db.session.scalars(
        db.select(AuditEntry)
        .where(AuditEntry.event == EXPORTED_EVENT, AuditEntry.seq > up_to)
        .order_by(AuditEntry.seq)
    )
    for entry in candidates:
        if (entry.details or {}).get("export", {}).get("id") == descriptor["id"]:
            return entry
    raise ExportError("the export could not be recorded in the audit record")


def _write_manifest(
    archive: _ExportZip,
    descriptor: dict[str, Any],
    recorded: AuditEntry,
    checkpoint: Any,
    chain_from: int,
) -> None:
    """manifest.json in its canonical form, the content hashes streamed into it."""
    hashes = _content_hashes(chain_from, checkpoint.seq)
    prev_hash = next(hashes)
    manifest = {
        "export": descriptor,
        "export_entry": {
            **{name: getattr(recorded, name) for name in CONTENT_FIELDS},
            "time": format_time(recorded.time),
            "personal_digest": recorded.personal_digest,
            "prev_hash": recorded.prev_hash,
            "entry_hash": recorded.entry_hash,
        },
        "chain": {
            "from_seq": chain_from,
            "prev_hash": prev_hash,
            "content_hashes": [_HASHES_PLACEHOLDER],
        },
        "checkpoint": {
            "kind": checkpoint.kind,
            "seq": checkpoint.seq,
            "head_hash": checkpoint.head_hash,
            "created_at": format_time(checkpoint.created_at),
            "key_id": checkpoint.key_id,
            "signature": checkpoint.signature,
            "public_jwk": descriptor["audit_key"],
        },
    }
    before, after = canonical_manifest(manifest).split(f'"{_HASHES_PLACEHOLDER}"')
    separator = ",\n" + before[before.rindex("\n") + 1 :]
    with archive.member(MANIFEST) as member:
        member.write(before.encode("ascii"))
        for index, value in enumerate(hashes):
            member.write(((separator if index else "") + f'"{value}"').encode("ascii"))
        member.write(after.encode("ascii"))


def _content_hashes(first: int, last: int) -> Iterator[str]:
    """The prev_hash of entry first, then the content hash of every entry from first to last,
    recomputed from the stored rows a batch at a time."""
    table = AuditEntry.__table__
    columns = [table.c[name] for name in (*CONTENT_FIELDS, "personal_digest", "prev_hash")]
    expected = first
    while expected <= last:
        rows = db.session.execute(
            db.select(*columns)
            .where(table.c.seq >= expected, table.c.seq <= last)
            .order_by(table.c.seq)
            .limit(BATCH * 5)
        ).all()
        for row in rows:
            if row.seq != expected:
                raise ExportError(
                    f"entry {expected} is missing from the audit record: run idp audit verify"
                )
            if expected == first:
                yield row.prev_hash
            fields = fields_of(row)
            yield content_hash(fields, row.personal_digest)
            expected += 1
        if not rows:
            raise ExportError(
                f"entry {expected} is missing from the audit record: run idp audit verify"
            )


def canonical_manifest(manifest: dict[str, Any]) -> str:
    """The one form a manifest is written in (and must be found in)."""
    return json.dumps(manifest, indent=1, sort_keys=True, ensure_ascii=True) + "\n"


# -- Verifying (no database) --------------------------------------------------------------------


def verify_export(
    source: str | os.PathLike[str] | bytes, *, public_jwk: dict[str, Any] | None = None
) -> ExportReport:
    """Check an export offline: the signed checkpoint, the chain of hashes up to it, the record
    of the export itself, the entries file's SHA-256, every row's hashes, and every byte of the
    .zip around them. public_jwk: the audit key to insist on (otherwise the one in the manifest,
    which the report names). Whatever the file holds, the answer is a report, never an error."""
    report = ExportReport()
    try:
        with _open_source(source) as raw, zipfile.ZipFile(raw) as archive:
            _verify(archive, report, public_jwk)
            _check_zip_bytes(archive, source)
    except _Problem as problem:
        report.problem, report.file, report.seq = str(problem), problem.file, problem.seq
    except (
        zipfile.BadZipFile,
        zlib.error,
        EOFError,
        OSError,
        NotImplementedError,
        RuntimeError,
    ) as exc:
        report.problem = f"the export file is damaged or is not a .zip export ({exc})"
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        # ValueError includes JSON and Unicode decoding errors.
        report.problem = f"the export is not one the IdP wrote: it cannot be read ({exc!r})"
    except Exception as exc:  # noqa: BLE001 - a damaged file gets a report, not a traceback
        report.problem = f"the export file is damaged or is not a .zip export ({exc!r})"
    if not report.ok:
        report.count, report.first_seq, report.last_seq = 0, None, None
    return report


def _open_source(source: str | os.PathLike[str] | bytes) -> IO[bytes]:
    """The .zip's bytes, from a path or from its bytes, to read from the start."""
    if isinstance(source, bytes | bytearray):
        return io.BytesIO(source)
    return Path(source).open("rb")


def _check_zip_bytes(archive: zipfile.ZipFile, source: str | os.PathLike[str] | bytes) -> None:
    """The .zip is exactly what _ExportZip writes for its members: rebuilt from them, a block at
    a time, it is the same bytes, none added before, between or after."""
    names = [info.filename for info in archive.infolist()]
    entries = next((name for name in names if name != MANIFEST), None)
    if entries is None or names != [entries, MANIFEST]:
        raise _Problem(f"{ZIP_ALTERED}: its files are not the expected ones, in order")
    with _open_source(source) as original:
        comparison = _Comparison(original)
        with _ExportZip(comparison) as rebuilt:  # type: ignore[arg-type]
            for name in names:
                with archive.open(name) as member, rebuilt.member(name) as copy:
                    for block in iter(lambda member=member: member.read(COPY_BLOCK), b""):
                        copy.write(block)
        if not comparison.finished():
            raise _Problem(ZIP_ALTERED)


class _Comparison:
    """A stream that compares what is written to it with the original file's bytes."""

    def __init__(self, original: IO[bytes]):
        self._original = original
        self.same = True

    def write(self, data: bytes) -> int:
        """Compare the next bytes of the original with these."""
        data = bytes(data)
        if self.same and self._original.read(len(data)) != data:
            self.same = False
        return len(data)

    def flush(self) -> None:
        """Nothing to flush."""

    def finished(self) -> bool:
        """Whether every byte written was the original's, and the original has no more."""
        return self.same and self._original.read(1) == b""


def _verify(archive: zipfile.ZipFile, report: ExportReport, public_jwk: dict | None) -> None:
    """Every check, in an order that names the first real problem."""
    manifest = _read_manifest(archive)
    export = manifest["export"]
    report.format, report.created = export["format"], export["created"]
    report.key_id = manifest["checkpoint"]["key_id"]
    report.checkpoint_seq = manifest["checkpoint"]["seq"]
    _check_checkpoint(manifest, public_jwk)
    _check_chain(manifest)
    _check_export_entry(manifest)
    _check_entries(archive, manifest, report)


def _read_manifest(archive: zipfile.ZipFile) -> dict[str, Any]:
    """manifest.json, parsed, in its canonical form and with the expected structure."""
    names = archive.namelist()
    if MANIFEST not in names:
        raise _Problem("the export has no manifest.json", MANIFEST)
    if len(names) != len(set(names)) or len(names) != 2:
        raise _Problem(f"the export should hold manifest.json and one entries file: {names}")
    raw = archive.read(MANIFEST)
    try:
        text = raw.decode("ascii")
        manifest = json.loads(text)
    except (UnicodeDecodeError, ValueError):
        raise _Problem("manifest.json was altered: it is no longer valid JSON", MANIFEST) from None
    if not isinstance(manifest, dict) or canonical_manifest(manifest) != text:
        raise _Problem(
            "manifest.json was altered: it is not in the form the IdP writes", MANIFEST
        ) from None
    _check_structure(manifest)
    entries_file = manifest["export"]["entries"]["file"]
    if entries_file not in names or entries_file != ENTRIES_FILES[manifest["export"]["format"]]:
        raise _Problem(f"the export has no {entries_file} beside its manifest", entries_file)
    return manifest


# The manifest's structure: every key present with the right type (the rest is checked against
# the signed chain).
_STRUCTURE: dict[str, dict[str, Any]] = {
    "": {"export": dict, "export_entry": dict, "chain": dict, "checkpoint": dict},
    "export": {
        "version": int,
        "id": str,
        "issuer": str,
        "created": str,
        "format": str,
        "filters": dict,
        "up_to_seq": int,
        "entries": dict,
        "audit_key": dict,
    },
    "export.entries": {
        "file": str,
        "count": int,
        "first_seq": (int, type(None)),
        "last_seq": (int, type(None)),
        "sha256": str,
    },
    "chain": {"from_seq": int, "prev_hash": str, "content_hashes": list},
    "checkpoint": {
        "kind": str,
        "seq": int,
        "head_hash": str,
        "created_at": str,
        "key_id": str,
        "signature": str,
        "public_jwk": dict,
    },
    "export_entry": {
        **{name: object for name in CONTENT_FIELDS},
        "seq": int,
        "personal_digest": str,
        "prev_hash": str,
        "entry_hash": str,
    },
}


def _check_structure(manifest: dict[str, Any]) -> None:
    """Every part of the manifest has exactly the keys and types expected."""
    for path, expected in _STRUCTURE.items():
        part = manifest
        for step in filter(None, path.split(".")):
            part = part[step]
        where = f"manifest.json ({path or 'top level'})"
        if set(part) != set(expected):
            raise _Problem(f"{where} was altered: its fields are not the expected ones", MANIFEST)
        for name, kind in expected.items():
            if isinstance(part[name], bool) or not isinstance(part[name], kind):
                raise _Problem(f"{where} was altered: {name} has the wrong type", MANIFEST)
    if manifest["export"]["version"] != VERSION:
        raise _Problem(f"manifest.json is version {manifest['export']['version']}", MANIFEST)
    if manifest["export"]["format"] not in FORMATS:
        raise _Problem("manifest.json was altered: its format is unknown", MANIFEST)


def _check_checkpoint(manifest: dict[str, Any], trusted: dict[str, Any] | None) -> None:
    """The checkpoint is signed by the audit key recorded with the export, and says what the
    manifest says it does."""
    checkpoint = manifest["checkpoint"]
    key = checkpoint["public_jwk"]
    if key != manifest["export"]["audit_key"]:
        raise _Problem(
            "manifest.json was altered: the checkpoint's key is not the audit key recorded "
            "with the export",
            MANIFEST,
        )
    if trusted is not None and key != trusted:
        raise _Problem("the export is not signed by the audit key you gave", MANIFEST)
    try:
        thumbprint = import_key(key).thumbprint()
    except (JoseError, ValueError, TypeError, KeyError):
        raise _Problem("manifest.json was altered: its audit key is not a key", MANIFEST) from None
    if not thumbprint == key.get("kid") == checkpoint["key_id"] == _jws_kid(checkpoint):
        raise _Problem("manifest.json was altered: the audit key's id does not match", MANIFEST)
    try:
        payload = verify_signature(checkpoint["signature"], key)
    except CheckpointError as exc:
        raise _Problem(f"manifest.json was altered: {exc}", MANIFEST) from None
    signed = {
        "iss": manifest["export"]["issuer"],
        **{name: checkpoint[name] for name in ("kind", "seq", "head_hash", "created_at")},
    }
    if checkpoint["kind"] != "checkpoint" or payload != signed:
        raise _Problem(
            "manifest.json was altered: the checkpoint does not say what was signed", MANIFEST
        )


def _jws_kid(checkpoint: dict[str, Any]) -> Any:
    """The kid in the signature's protected header."""
    try:
        header = checkpoint["signature"].split(".")[0]
        return json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4))).get("kid")
    except (ValueError, AttributeError):
        return None


def _check_chain(manifest: dict[str, Any]) -> None:
    """The content hashes, linked from the first prev_hash, end at the signed head, passing
    through the entry that recorded this export as the manifest says."""
    chain, checkpoint, recorded = (
        manifest["chain"],
        manifest["checkpoint"],
        manifest["export_entry"],
    )
    hashes = chain["content_hashes"]
    if len(hashes) != checkpoint["seq"] - chain["from_seq"] + 1:
        raise _Problem(
            "manifest.json was altered: it does not hold one content hash for each entry "
            f"from {chain['from_seq']} to the checkpoint's entry {checkpoint['seq']}",
            MANIFEST,
        )
    export_index = recorded["seq"] - chain["from_seq"]
    link, export_links = chain["prev_hash"], None
    for index, value in enumerate(hashes):
        prev, link = link, entry_hash(link, value)
        if index == export_index:
            export_links = (prev, link)
    if link != checkpoint["head_hash"]:
        raise _Problem(
            "the chain hashes in manifest.json do not lead to the head the checkpoint signed: "
            "the manifest, or the record it was exported from, was altered",
            MANIFEST,
        )
    if export_links != (recorded["prev_hash"], recorded["entry_hash"]):
        raise _Problem(
            f"manifest.json was altered: the record of this export (entry {recorded['seq']}) "
            "is not where the chain says",
            MANIFEST,
            recorded["seq"],
        )


def _check_export_entry(manifest: dict[str, Any]) -> None:
    """The entry recording this export is in the chain and holds the manifest's export part."""
    recorded, chain, export = manifest["export_entry"], manifest["chain"], manifest["export"]
    seq = recorded["seq"]
    index = seq - chain["from_seq"]
    if not (export["up_to_seq"] < seq and 0 <= index < len(chain["content_hashes"])):
        raise _Problem("manifest.json was altered: the export's own entry is misplaced", MANIFEST)
    fields = {name: recorded[name] for name in CONTENT_FIELDS}
    if content_hash(fields, recorded["personal_digest"]) != chain["content_hashes"][index]:
        raise _Problem(
            f"manifest.json was altered: the record of this export (entry {seq}) changed",
            MANIFEST,
            seq,
        )
    details = recorded["details"] if isinstance(recorded["details"], dict) else {}
    if recorded["event"] != EXPORTED_EVENT or details.get("export") != export:
        raise _Problem(
            f"manifest.json was altered: it does not say what entry {seq} recorded of this "
            "export (filters, format, times, the entries file's SHA-256, the key)",
            MANIFEST,
            seq,
        )
    entries = export["entries"]
    first = entries["first_seq"] if entries["count"] else seq
    if chain["from_seq"] != first:
        raise _Problem("manifest.json was altered: its chain starts at the wrong entry", MANIFEST)


def _check_entries(archive: zipfile.ZipFile, manifest: dict[str, Any], report: ExportReport):
    """The entries file has the recorded SHA-256, and each row its place in the chain."""
    entries = manifest["export"]["entries"]
    name = entries["file"]
    digest = hashlib.sha256()
    with archive.open(name) as member:
        for block in iter(lambda: member.read(1 << 20), b""):
            digest.update(block)
    altered = digest.hexdigest() != entries["sha256"]
    try:
        count, first, last = _check_rows(archive, manifest)
    except _Problem as problem:
        prefix = f"{name} was altered: " if altered else ""
        raise _Problem(prefix + str(problem), name, problem.seq) from None
    if altered:
        raise _Problem(f"{name} was altered: its SHA-256 is not the one recorded", name)
    if (count, first, last) != (entries["count"], entries["first_seq"], entries["last_seq"]):
        raise _Problem(f"{name} does not hold the entries the manifest lists", name)
    report.count, report.first_seq, report.last_seq = count, first, last


def _check_rows(archive: zipfile.ZipFile, manifest: dict[str, Any]) -> tuple[int, Any, Any]:
    """Walk the chain again beside the rows: each row's hashes recomputed and compared."""
    chain, export = manifest["chain"], manifest["export"]
    rows = _rows(archive, export["entries"]["file"], export["format"])
    row = next(rows, None)
    count, first, last = 0, None, None
    link = chain["prev_hash"]
    for index, content in enumerate(chain["content_hashes"]):
        seq = chain["from_seq"] + index
        prev, link = link, entry_hash(link, content)
        if row is None or row["seq"] != seq:
            continue
        _check_row(row, content, prev, link, export["up_to_seq"])
        count, first, last = count + 1, seq if first is None else first, seq
        row = next(rows, None)
    if row is not None:
        raise _Problem(
            f"entry {row['seq']} is out of order, repeated or outside the exported range",
            seq=row["seq"],
        )
    return count, first, last


def _check_row(row: dict[str, Any], content: str, prev: str, link: str, up_to: int) -> None:
    """One exported row against the chain."""
    seq = row["seq"]
    if seq > up_to:
        raise _Problem(f"entry {seq} was not part of the export", seq=seq)
    if row["personal_salt"] is not None:
        digest = personal_digest(
            row["personal_salt"], row["citizen_id"], row["ip"], row["user_agent"]
        )
        if digest != row["personal_digest"]:
            raise _Problem(f"entry {seq}: its citizen, IP address or user agent changed", seq=seq)
    elif row["erased_at"] is None or any(
        row[n] is not None for n in ("citizen_id", "ip", "user_agent")
    ):
        raise _Problem(f"entry {seq}: its personal fields lost their salt", seq=seq)
    fields = {name: row[name] for name in CONTENT_FIELDS}
    if content_hash(fields, row["personal_digest"]) != content:
        raise _Problem(f"entry {seq} changed: its content no longer matches the chain", seq=seq)
    if row["prev_hash"] != prev or row["entry_hash"] != link:
        raise _Problem(f"entry {seq}: its prev_hash or entry_hash is not the chain's", seq=seq)


def _rows(archive: zipfile.ZipFile, name: str, fmt: str) -> Iterator[dict[str, Any]]:
    """The rows of the entries file, typed as exported; a _Problem naming the line otherwise."""
    with archive.open(name) as member:
        if fmt == "jsonl":
            for number, line in enumerate(member, start=1):
                yield _jsonl_row(line, name, number)
            return
        text = io.TextIOWrapper(member, encoding="utf-8", newline="")
        reader = csv.reader(text)
        try:
            header = next(reader, None)
            if header != list(COLUMNS):
                raise _Problem(f"the first line of {name} is not its header", name)
            for cells in reader:
                yield _csv_row(cells, name, reader.line_num)
        except (UnicodeDecodeError, csv.Error) as exc:
            raise _Problem(
                f"{name} cannot be read near line {reader.line_num}: {exc}", name
            ) from None


def _jsonl_row(line: bytes, name: str, number: int) -> dict[str, Any]:
    """One line of entries.jsonl."""
    try:
        if not line.endswith(b"\n"):
            raise ValueError("the line does not end")
        row = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise _Problem(f"line {number} of {name} is not a JSON object", name) from None
    if not isinstance(row, dict) or list(row) != list(COLUMNS):
        raise _Problem(f"line {number} of {name} does not have the expected fields", name)
    _check_types(row, name, number)
    return row


def _csv_row(cells: list[str], name: str, number: int) -> dict[str, Any]:
    """One line of entries.csv, each cell turned back into the value exported."""
    if len(cells) != len(COLUMNS):
        raise _Problem(f"line {number} of {name} has {len(cells)} cells, not {len(COLUMNS)}", name)
    row: dict[str, Any] = {}
    for column, cell in zip(COLUMNS, cells, strict=True):
        if cell == "":
            row[column] = None
        elif column in INTEGER_COLUMNS:
            if not (cell.isascii() and cell.isdigit()):
                raise _Problem(f"line {number} of {name}: {column} is not a number", name)
            row[column] = int(cell)
        else:
            value = cell[1:] if cell.startswith(CSV_ESCAPE) else cell
            if column == "details":
                try:
                    value = json.loads(value)
                except ValueError:
                    raise _Problem(f"line {number} of {name}: details is not JSON", name) from None
            row[column] = value
    _check_types(row, name, number)
    return row


_TEXT_OR_NONE = (str, type(None))
_ROW_TYPES: dict[str, Any] = {
    **{name: _TEXT_OR_NONE for name in COLUMNS},
    "seq": int,
    "citizen_id": (int, type(None)),
    "time": str,
    "event": str,
    "outcome": str,
    "instance": str,
    "details": dict,
    "personal_digest": str,
    "prev_hash": str,
    "entry_hash": str,
}


def _check_types(row: dict[str, Any], name: str, number: int) -> None:
    """Each field has the type it was exported with."""
    for column, kind in _ROW_TYPES.items():
        if isinstance(row[column], bool) or not isinstance(row[column], kind):
            raise _Problem(f"line {number} of {name}: {column} has the wrong type", name)
