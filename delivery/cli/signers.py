"""`signers import|add|count|remove|purge` → calls of delivery.services.signers (and .retention),
with their reports."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from delivery.errors import InputRefused, RowRejected, UsageError

if TYPE_CHECKING:
    from delivery.services.app import App
    from delivery.services.retention import PurgeReport

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
    p = sub.add_parser("purge", parents=[common],
                       help="erase the names, places and e-mail keys of signers who signed before a date",
                       description="Erase the names, cities, e-mail keys (and countries that few share) of "
                                   "the signers who signed before DATE; they stay counted, with their "
                                   "numbers and dates, as withheld lines in later dossiers. Cached "
                                   "volumes and previews are deleted; delivered dossiers are kept.")
    p.add_argument("--before", required=True, metavar="DATE",
                   help="a day, YYYY-MM-DD (UTC, as dossiers print dates): who signed before it")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    p.add_argument("--dry-run", action="store_true", help="say what would be erased; change nothing")


def run(app: App, args: argparse.Namespace, emit: Emit, now: datetime, actor: str) -> int:
    from delivery.services import signers

    campaign = app.campaign(args.campaign)
    action = args.signers_command
    if action == "import":
        report = signers.import_file(app, campaign, args.file, now=now, actor=actor, encoding=args.encoding,
                                     column_map=args.column_map, dry_run=args.dry_run)
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
            added = signers.add_signer(app, campaign, fields, now=now, actor=actor)
        except RowRejected as exc:
            raise InputRefused("signers add", exc.reason) from exc
        emit(args, {"added": int(added.stored)}, "signer added" if added.stored else
             "already signed: a signer with this e-mail is on the list (nothing changed)")
        return 0
    if action == "count":
        count = signers.count(app, campaign)
        emit(args, {"signers": count}, f"{count:,}")
        return 0
    if action == "purge":
        return _purge(app, args, emit, now, actor)
    signers.withdraw(app, campaign, args.email, now=now, actor=actor)
    emit(args, {"withdrawn": True}, "signer withdrawn: they will not appear in any later dossier")
    return 0


def _purge(app: App, args: argparse.Namespace, emit: Emit, now: datetime, actor: str) -> int:
    from delivery.services import retention

    campaign = app.campaign(args.campaign)
    try:
        day = date.fromisoformat(args.before)
    except ValueError:
        raise UsageError(f"--before: '{args.before}' is not a date like 2026-06-01") from None
    plan = retention.purge_before(app, campaign, day, now=now, actor=actor, dry_run=True)
    if args.dry_run:
        emit(args, plan.to_dict(), f"dry run, nothing changed: would erase {plan.erased:,} signers who "
                                   f"signed before {day} (UTC)" + _files_text(plan))
        return 0
    if not plan.erased:
        emit(args, plan.to_dict(), f"no signer who signed before {day} (UTC) is left to erase: "
                                   "nothing changed")
        return 0
    if not args.yes:
        if not sys.stdin.isatty():
            raise UsageError("signers purge asks for confirmation: run it in a terminal, or add --yes")
        answer = input(f"Erase the names, places and e-mail keys of {plan.erased:,} signers of "
                       f"{campaign.slug} who signed before {day} (UTC)? This cannot be undone. [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("nothing erased")
            return 0
    report = retention.purge_before(app, campaign, day, now=now, actor=actor)
    emit(args, report.to_dict(), f"erased {report.erased:,} signers who signed before {day} (UTC): "
                                 "their names, cities and e-mail keys, and countries that fewer than "
                                 f"{retention.COUNTRY_KEPT_FROM} signers share; they stay counted, "
                                 "with their numbers and dates" + _files_text(report))
    return 0


def _files_text(report: PurgeReport) -> str:
    verb = "would delete" if report.dry_run else "deleted"
    text = (f"\n{verb}: {report.cache_files_deleted:,} cached volume files, "
            f"{len(report.previews_deleted):,} preview folders")
    if report.previews_not_identified:
        text += ("\nnot deleted (no readable manifest says which campaign they show; delete them "
                 "yourself if they are this campaign's): " + ", ".join(report.previews_not_identified))
    return text + (f"\nkept: {report.delivered_dossiers_kept:,} delivered dossiers in the database and "
                   f"{report.outbox_files_kept:,} .eml files in {report.outbox_dir}: what recipients "
                   "received, with the names they were sent")
