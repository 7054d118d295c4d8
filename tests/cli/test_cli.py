"""The command line as organizers use it: real subprocesses, real database, real SMTP server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from delivery.storage.db import make_engine, schema_revisions, upgrade_schema
from tests.support.smtpd import SmtpServer

REPO = Path(__file__).resolve().parents[2]
Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def cli(database_url: str, tmp_path: Path, signing_files: tuple[Path, Path]) -> Run:
    key, cert = signing_files
    base = {k: v for k, v in os.environ.items() if not k.startswith("DELIVERY_")}
    base.update({"DELIVERY_HOME": str(REPO), "DELIVERY_VAR_DIR": str(tmp_path / "var"),
                 "DELIVERY_DATABASE_URL": database_url, "DELIVERY_OUTBOX_DIR": str(tmp_path / "outbox"),
                 "DELIVERY_SIGNING_KEY": str(key), "DELIVERY_SIGNING_CERT": str(cert)})

    def run(*args: str, env: dict[str, str] | None = None,
            stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "delivery", *args], cwd=tmp_path, capture_output=True,
                              text=True, env={**base, **(env or {})}, input=stdin, timeout=300)

    assert run("init").returncode == 0
    return run


def write_csv(path: Path, rows: int, start: int = 0) -> Path:
    lines = ["name,email,city,country,signed_at,consent"]
    lines += [f"Signer {i},signer{i}@example.net,Yerevan,Armenia,2026-10-01T10:00:00Z,yes"
              for i in range(start, start + rows)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_init_is_safe_to_rerun(cli: Run) -> None:
    again = cli("init")
    assert again.returncode == 0, again.stderr
    assert "salman-mukaev" in again.stdout


def test_import_count_status_and_reimport(cli: Run, tmp_path: Path) -> None:
    csv_file = write_csv(tmp_path / "export.csv", 30)
    first = cli("signers", "import", str(csv_file), "--json")
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["imported"] == 30
    again = cli("signers", "import", str(csv_file), "--json")
    assert json.loads(again.stdout)["imported"] == 0 and json.loads(again.stdout)["duplicates"] == 30
    assert cli("signers", "count").stdout.strip() == "30"
    status = json.loads(cli("status", "--json").stdout)
    assert status["signers"] == 30 and status["goal"] == 80_000 and status["next_milestone"] == 1000
    text = cli("status").stdout
    assert "30 of 80,000" in text and "next milestone: 1,000" in text


def test_add_and_remove_a_signer(cli: Run) -> None:
    added = cli("signers", "add", "--name", "Անի Հակոբյան", "--email", "ani@example.net", "--city", "Երևան",
                "--country", "AM")
    assert added.returncode == 0, added.stderr
    dup = cli("signers", "add", "--name", "Ani H", "--email", "ANI@example.net", "--city", "Yerevan",
              "--country", "AM")
    assert dup.returncode == 0 and "already signed" in dup.stdout
    assert cli("signers", "count").stdout.strip() == "1"
    removed = cli("signers", "remove", "Ani@Example.net")
    assert removed.returncode == 0, removed.stderr
    assert cli("signers", "count").stdout.strip() == "0"
    missing = cli("signers", "remove", "nobody@example.net")
    assert missing.returncode == 2 and "no signer" in missing.stderr


def test_bad_input_exits_2_with_one_clear_line(cli: Run, tmp_path: Path) -> None:
    bad = cli("signers", "add", "--name", "X", "--email", "not-an-email", "--city", "Y", "--country", "AM")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "e-mail" in bad.stderr.lower()
    missing_file = cli("signers", "import", str(tmp_path / "nope.csv"))
    assert missing_file.returncode == 2 and missing_file.stderr.startswith("petition-delivery: ")
    assert cli("run-due", "--now", "yesterday").returncode == 2
    assert cli("status", "--campaign", "nope").returncode == 2
    assert cli("deliveries", "cancel", "NOPE-1").returncode == 2
    usage = cli("frobnicate")
    assert usage.returncode == 2


def test_send_asks_for_confirmation_without_a_terminal(cli: Run) -> None:
    result = cli("send")
    assert result.returncode == 2 and "--yes" in result.stderr
    dry = cli("send", "--dry-run", "--to", "prime-minister@example.org")
    assert dry.returncode == 0 and "prime-minister@example.org" in dry.stdout
    assert json.loads(cli("deliveries", "--json").stdout) == []


def test_preview_writes_the_bundle_without_sending(cli: Run, tmp_path: Path) -> None:
    cli("signers", "import", str(write_csv(tmp_path / "e.csv", 12)))
    out = tmp_path / "preview"
    result = cli("preview", "--out", str(out), "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    names = {f["name"] for f in data["files"]}
    assert {"manifest.json", "manifest.json.p7s"} <= names
    assert {p.name for p in out.iterdir()} == names
    assert all(f["pages"] for f in data["files"] if f["name"].endswith(".pdf"))
    assert json.loads(cli("deliveries", "--json").stdout) == []
    assert not (tmp_path / "outbox").exists()
    assert data["dossier_id"].startswith("PREVIEW-")


def test_preview_out_onto_a_file_or_a_full_folder_is_refused_before_building(
        cli: Run, tmp_path: Path) -> None:
    cli("signers", "import", str(write_csv(tmp_path / "e.csv", 3)))
    taken = tmp_path / "taken.pdf"
    taken.write_bytes(b"keep me")
    full = tmp_path / "full"
    full.mkdir()
    (full / "notes.txt").write_text("mine")
    for target, words in ((taken, "a file of that name exists"), (full, "not empty")):
        result = cli("preview", "--out", str(target))
        assert result.returncode == 2 and words in result.stderr and "Traceback" not in result.stderr
        assert "rendering" not in result.stderr  # refused before the build, not after it
    assert taken.read_bytes() == b"keep me" and [p.name for p in full.iterdir()] == ["notes.txt"]
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no staging left


def test_a_preview_never_verifies_as_a_delivery(cli: Run, tmp_path: Path,
                                                signing_files: tuple[Path, Path]) -> None:
    cli("signers", "import", str(write_csv(tmp_path / "e.csv", 3)))
    cli("preview", "--out", str(tmp_path / "p"))
    result = cli("verify", "--trust", str(signing_files[1]), str(tmp_path / "p"))
    assert result.returncode == 1 and "preview" in result.stdout


def test_send_run_due_and_deliveries_log(cli: Run, tmp_path: Path, smtp_server: SmtpServer) -> None:
    cli("signers", "import", str(write_csv(tmp_path / "e.csv", 8)))
    sent = cli("send", "--yes", "--to", "prime-minister@example.org", env=smtp_server.env())
    assert sent.returncode == 0, sent.stderr
    assert [r.rcpt_tos for r in smtp_server.received] == [["prime-minister@example.org"]]
    log = json.loads(cli("deliveries", "--json").stdout)
    [delivery] = log
    assert delivery["trigger"] == "manual" and delivery["status"] == "done"
    assert all(len(f["sha256"]) == 64 for f in delivery["files"])
    [message] = delivery["messages"]
    assert message["status"] == "sent" and message["attempts"] == 1
    assert message["last_answer"].startswith("250")
    text = cli("deliveries").stdout
    assert "sha256" in text and "prime-minister@example.org" in text
    tick = cli("run-due", "--now", "2026-11-24T10:00:00+04:00", "--json", env=smtp_server.env())
    assert tick.returncode == 0, tick.stderr
    assert json.loads(tick.stdout)[0]["signer_count"] == 8


def test_verify_accepts_a_sent_dossier_and_rejects_a_changed_one(
        cli: Run, tmp_path: Path, smtp_server: SmtpServer, signing_files: tuple[Path, Path]) -> None:
    cli("signers", "import", str(write_csv(tmp_path / "e.csv", 5)))
    cli("send", "--yes", env=smtp_server.env())
    eml = tmp_path / "received.eml"
    received = next(r for r in smtp_server.received if r.rcpt_tos == ["prime-minister@example.org"])
    eml.write_bytes(received.data)
    ok = cli("verify", "--trust", str(signing_files[1]), str(eml))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    untrusted = cli("verify", str(eml))
    assert untrusted.returncode == 1 and "--trust" in untrusted.stdout
    folder = tmp_path / "bundle"
    preview = cli("preview", "--out", str(folder))
    assert preview.returncode == 0
    pdf = next(folder.glob("*-en.pdf"))
    data = bytearray(pdf.read_bytes())
    data[len(data) // 3] ^= 0x01
    pdf.write_bytes(bytes(data))
    bad = cli("verify", "--trust", str(signing_files[1]), str(folder))
    assert bad.returncode == 1 and "FAIL" in bad.stdout


def test_status_names_milestones_passed_but_not_yet_delivered(cli: Run, tmp_path: Path) -> None:
    cli("signers", "import", str(write_csv(tmp_path / "e.csv", 1001)))
    status = json.loads(cli("status", "--json").stdout)
    assert status["milestones_pending"] == [1000] and status["next_milestone"] == 5000
    assert "passed, delivery created at the next tick: 1,000" in cli("status").stdout


def test_a_closed_pipe_ends_quietly(cli: Run, database_url: str, tmp_path: Path) -> None:
    env = {**os.environ, "DELIVERY_HOME": str(REPO), "DELIVERY_DATABASE_URL": database_url,
           "DELIVERY_VAR_DIR": str(tmp_path / "var")}
    process = subprocess.Popen([sys.executable, "-m", "delivery", "status"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, env=env, cwd=tmp_path)
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # like `| head` giving up before the command prints
    with process.stderr:
        stderr = process.stderr.read().decode()
    assert process.wait(timeout=60) == 0 and "Traceback" not in stderr


def test_database_unreachable_is_one_line_exit_1(cli: Run) -> None:
    result = cli("status", env={"DELIVERY_DATABASE_URL": "postgresql://postgres@127.0.0.1:1/none"})
    assert result.returncode == 1
    assert result.stderr.startswith("petition-delivery: ") and "Traceback" not in result.stderr


def test_import_names_the_columns_it_did_not_read(cli: Run, tmp_path: Path) -> None:
    path = tmp_path / "de.csv"
    path.write_text("Full Name;Mail;Heimatstadt;Staat;Unterschrieben am\n"
                    "Hans Beispiel;hans@example.net;Köln;DE;27.11.2026\n", encoding="utf-8")
    undated = cli("signers", "import", str(path), "--consent-missing", "withhold")
    assert undated.returncode == 2 and "--signed-at-missing import-time" in undated.stderr
    result = cli("signers", "import", str(path), "--dry-run", "--map", "signed_at=Unterschrieben am",
                 "--consent-missing", "withhold")
    assert result.returncode == 0, result.stderr
    assert "columns not read: Heimatstadt, Staat" in result.stdout
    assert "no column found for: city, country, consent" in result.stdout
    assert "would import 1 (0 named, 1 withheld)" in result.stdout
    assert "line 2: Hans Beispiel | 2026-11-27 00:00 UTC | - | withheld" in result.stdout
    mapped = cli("signers", "import", str(path), "--map", "city=Heimatstadt", "--map", "country=Staat",
                 "--map", "signed_at=Unterschrieben am", "--consent-missing", "withhold", "--json")
    report = json.loads(mapped.stdout)
    assert report["imported"] == 1 and report["withheld"] == 1 and report["unused_columns"] == []
    assert report["missing_fields"] == ["consent"] and report["date_order"] == "dmy"


@pytest.mark.parametrize(("rows", "refusal", "option"), [
    (["3/4/2026", "5/6/2026"], "can be read as", "--date-order"),
    (["25/3/2026", "3/25/2026"], "mixes day-first dates (line 2", "one file must use one order"),
])
def test_import_refuses_dates_it_cannot_read_one_way_and_the_option_settles_it(
        cli: Run, tmp_path: Path, rows: list[str], refusal: str, option: str) -> None:
    path = tmp_path / "us.csv"
    path.write_text("name,email,signed_at,consent\n" + "".join(
        f"Signer {chr(65 + i)},s{i}@example.net,{day},yes\n" for i, day in enumerate(rows)),
        encoding="utf-8")
    refused = cli("signers", "import", str(path))
    assert refused.returncode == 2 and refusal in refused.stderr and option in refused.stderr
    assert cli("signers", "count").stdout.strip() == "0"
    if option == "--date-order":
        settled = cli("signers", "import", str(path), "--date-order", "mdy", "--json")
        assert settled.returncode == 0 and json.loads(settled.stdout)["imported"] == 2


def test_campaign_and_json_options_go_before_or_after_the_command(cli: Run) -> None:
    before = cli("--campaign", "salman-mukaev", "--json", "status")
    after = cli("status", "--campaign", "salman-mukaev", "--json")
    assert before.returncode == after.returncode == 0
    assert json.loads(before.stdout)["campaign"] == json.loads(after.stdout)["campaign"] == "salman-mukaev"
    assert cli("--campaign", "nope", "status").returncode == 2


def test_serve_refuses_a_database_schema_older_than_the_code(cli: Run, database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        upgrade_schema(engine, "0002")  # as left by the version before volume_facts
        current, newest = schema_revisions(engine)
        assert current == "0002" != newest
        result = cli("serve", "--port", "0")
        assert result.returncode == 2 and "Traceback" not in result.stderr
        assert (f"the database schema is at revision 0002 and this version needs {newest}: run "
                "`petition-delivery init` to upgrade it") in result.stderr
    finally:
        assert cli("init").returncode == 0
    assert schema_revisions(engine) == (newest, newest)
    engine.dispose()
