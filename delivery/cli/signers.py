"""`signers import|add|count|remove` → intake and store calls, with their reports."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from delivery.errors import InputRefused, NotFound, RowRejected
from delivery.services.app import App
from delivery.storage import audit
from delivery.storage.db import transaction

Emit = Callable[[argparse.Namespace, Any, str], None]


def add_parsers(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="signers_command", required=True, metavar="ACTION")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--campaign", metavar="SLUG", default=argparse.SUPPRESS)
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS)
    p = sub.add_parser("import", parents=[common], help="import a CSV export of signers")
    p.add_argument("file", type=Path)
    p.add_argument("--encoding", help="the file's encoding when it is not UTF-8 or UTF-16 with BOM")
    p.add_argument("--map", dest="column_map", metavar="FIELD=COLUMN,...",
                   help="which column holds which field, e.g. name=Full Name,city=Town")
    p.add_argument("--dry-run", action="store_true", help="report what would happen; write nothing")
    p = sub.add_parser("add", parents=[common], help="add one signer")
    p.add_argument("--name", required=True)
    p.add_argument("--email", required=True)
    p.add_argument("--city", required=True)
    p.add_argument("--country", required=True)
    p.add_argument("--signed-at", help="ISO time of signing (default: now)")
    p.add_argument("--no-consent", action="store_true", help="count the signer, never name them")
    sub.add_parser("count", parents=[common], help="how many signers (withdrawn ones excluded)")
    p = sub.add_parser("remove", parents=[common], help="withdraw a signer from all later dossiers")
    p.add_argument("email")


def run(app: App, args: argparse.Namespace, emit: Emit, now: datetime, actor: str) -> int:
    from delivery.signers import store as signers
    from delivery.signers.intake import validate_signer

    campaign = app.campaign(args.campaign)
    with transaction(app.engine) as session:
        campaign_id = app.campaign_id(session, campaign)
    action = args.signers_command
    if action == "import":
        column_map = signers.parse_column_map(args.column_map) if args.column_map else None
        report = signers.import_csv(app.engine, campaign_id, args.file, now=now, encoding=args.encoding,
                                    column_map=column_map, dry_run=args.dry_run)
        if not args.dry_run:
            with transaction(app.engine) as session:
                audit.record(session, at=now, actor=actor, action="signers.import", campaign_id=campaign_id,
                             subject=args.file.name, imported=report.imported,
                             duplicates=report.duplicates, rejected=report.rejected)
        rejects = f"; rejected rows written to {report.rejects_file}" if report.rejects_file else ""
        prefix = "dry run, nothing written: would import" if args.dry_run else "imported"
        notes = ""
        if report.unused_columns:
            notes += (f"\ncolumns not read: {', '.join(report.unused_columns)} (to use one: "
                      "--map FIELD=COLUMN, fields name, email, city, country, signed_at, consent)")
        if report.missing_fields:
            notes += (f"\nno column found for: {', '.join(report.missing_fields)}"
                      + (" (without signed_at, the signing time is the time of import)"
                         if "signed_at" in report.missing_fields else ""))
        emit(args, report.to_dict(), f"{prefix} {report.imported:,}, duplicates {report.duplicates:,}, "
                                     f"rejected {report.rejected:,}{rejects}{notes}")
        return 0
    if action == "add":
        fields = {"name": args.name, "email": args.email, "city": args.city, "country": args.country,
                  "signed_at": args.signed_at, "consent": not args.no_consent}
        try:
            signer = validate_signer(fields, now=now, source=actor)
        except RowRejected as exc:
            raise InputRefused("signers add", exc.reason) from exc
        with transaction(app.engine) as session:
            inserted, _ = signers.add_signers(session, campaign_id, [signer], now=now)
            if inserted:
                audit.record(session, at=now, actor=actor, action="signers.add", campaign_id=campaign_id,
                             subject="1 signer")
        emit(args, {"added": inserted}, "signer added" if inserted else
             "already signed: a signer with this e-mail is on the list (nothing changed)")
        return 0
    if action == "count":
        with transaction(app.engine) as session:
            count = signers.count_signers(session, campaign_id)
        emit(args, {"signers": count}, f"{count:,}")
        return 0
    with transaction(app.engine) as session:
        found = signers.withdraw_signer(session, campaign_id, args.email, now=now, actor=actor)
    if not found:
        raise NotFound("no signer with that e-mail address in this campaign")
    emit(args, {"withdrawn": True}, "signer withdrawn: they will not appear in any later dossier")
    return 0
