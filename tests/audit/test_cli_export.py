"""An operator exports the record with `idp audit export` and a third party checks it with
`idp audit verify --export FILE`, without the database."""

from __future__ import annotations

import zipfile

from tests.support.cli import run


def test_an_export_made_by_the_cli_verifies_offline_and_not_after_a_change(tmp_path):
    from tests.support.cli import migrated_env

    env = migrated_env(tmp_path)
    for number in range(3):
        run(
            env,
            "citizens",
            "create",
            "--email",
            f"export{number}@example.com",
            "--password",
            "a long and memorable passphrase",
        )
    export = tmp_path / "record.zip"
    made = run(env, "audit", "export", "--format", "csv", "-o", str(export))
    assert "exported" in made.stdout and "signed checkpoint" in made.stdout

    # The verifier has the file only: no database, no instance folder.
    offline = {k: v for k, v in env.items() if not k.startswith("IDP_")}
    offline["IDP_INSTANCE_PATH"] = str(tmp_path / "nowhere")
    checked = run(offline, "audit", "verify", "--export", str(export))
    assert "record.zip verifies" in checked.stdout
    assert not (tmp_path / "nowhere" / "idp.sqlite3").exists()

    # One byte of the entries changed inside an otherwise valid zip: refused, and named.
    with zipfile.ZipFile(export) as original:
        members = {name: original.read(name) for name in original.namelist()}
    entries_name = next(name for name in members if name.startswith("entries"))
    data = bytearray(members[entries_name])
    position = data.index(b"citizen")
    data[position] = ord("C")
    members[entries_name] = bytes(data)
    tampered = tmp_path / "tampered.zip"
    with zipfile.ZipFile(tampered, "w") as rewritten:
        for name, content in members.items():
            rewritten.writestr(name, content)
    refused = run(offline, "audit", "verify", "--export", str(tampered), check=False)
    assert refused.returncode != 0
    assert "does not verify" in refused.stderr
    assert "Traceback" not in refused.stderr

    # A file that is not an export at all: a clear message, not a stack trace.
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"not a zip")
    refused = run(offline, "audit", "verify", "--export", str(junk), check=False)
    assert refused.returncode != 0
    assert "does not verify" in refused.stderr and "Traceback" not in refused.stderr


def test_export_refuses_bad_filters_with_a_message(tmp_path):
    from tests.support.cli import migrated_env

    env = migrated_env(tmp_path)
    bad = run(
        env, "audit", "export", "--from", "yesterday", "-o", str(tmp_path / "x.zip"), check=False
    )
    assert bad.returncode != 0
    assert "Traceback" not in bad.stderr and "Error:" in bad.stderr
    backwards = run(
        env,
        "audit",
        "export",
        "--from",
        "2026-02-01",
        "--to",
        "2026-01-01",
        "-o",
        str(tmp_path / "x.zip"),
        check=False,
    )
    assert "before its end" in backwards.stderr
