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
from delivery.signers.format_names import FORMAT_NAMES

if TYPE_CHECKING:
    from delivery.services.app import App
    from delivery.services.retention import PurgeReport
    from delivery.signers.store import ImportReport

Emit = Callable[[argparse.Namespace, Any, str], None]


def add_parsers(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="signers_command", required=True, metavar="ACTION")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--campaign", metavar="SLUG", default=argparse.SUPPRESS)
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS)
    p = sub.add_parser("import", parents=[common], help="import a CSV export of signers",
                       description="Import a CSV export of signers. A file that can be read two "
                                   "ways is refused, naming the option that settles it.")
    p.add_argument("file", type=Path)
    p.add_argument("--format", metavar="NAME",
                   help="the platform that wrote the file: " + ", ".join(FORMAT_NAMES))
    p.add_argument("--map", dest="maps", action="append", default=[], metavar="FIELD=COLUMN",
                   help="the column holding a field (repeatable), e.g. --map 'city=Town, village'; "
                        "fields: name, first_name, last_name, email, city, country, signed_at, "
                        "consent, postcode, phone, row_id")
    p.add_argument("--where", action="append", default=[], metavar="COLUMN=VALUE",
                   help="import only the rows whose COLUMN is VALUE (repeatable)")
    p.add_argument("--date-order", choices=("dmy", "mdy", "ymd"),
                   help="the day/month order of numeric dates, when no row of the file settles it")
    p.add_argument("--timezone", metavar="ZONE",
                   help="the zone of times written without one (default: the campaign's)")
    p.add_argument("--signed-at-missing", choices=("reject", "import-time"),
                   help="an empty date: reject the row (default), or date it at the time of import")
    p.add_argument("--consent-missing", choices=("name", "withhold"),
                   help="for a file with no consent column: name everyone, or withhold every name")
    p.add_argument("--encoding", help="the file's encoding when it is not UTF-8 or UTF-16 with BOM")
    p.add_argument("--update", action="store_true",
                   help="signers already stored take this file's consent, city, country and date")
    p.add_argument("--dry-run", action="store_true",
                   help="read the whole file and report what would happen; write nothing")
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
        options = signers.import_options(
            campaign, encoding=args.encoding, format=args.format, maps=args.maps, where=args.where,
            date_order=args.date_order, timezone=args.timezone,
            signed_at_missing=args.signed_at_missing, consent_missing=args.consent_missing,
            update=args.update, dry_run=args.dry_run)
        report = signers.import_file(app, campaign, args.file, now=now, actor=actor, options=options)
        emit(args, report.to_dict(), import_summary(report))
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


def import_summary(report: ImportReport) -> str:
    """An import's report → the lines an organizer reads."""
    prefix = "dry run, nothing written: would import" if report.dry_run else "imported"
    lines = [f"{prefix} {report.imported:,} ({report.named:,} named, {report.withheld:,} withheld), "
             f"duplicates {report.duplicates:,}, rejected {report.rejected:,}"
             + (f", excluded {report.excluded:,}" if report.excluded else "")
             + (f", updated {report.updated:,}" if report.updated else "")]
    if report.excluded_reasons:
        lines.append("excluded: " + "; ".join(f"{n:,} {reason}"
                                              for reason, n in report.excluded_reasons.items()))
    if report.date_order:
        lines.append(f"dates read {_ORDER_WORDS[report.date_order.value]}; times without a zone "
                     f"in {report.timezone}")
    if report.rejects_file:
        lines.append(f"rejected rows written to {report.rejects_file}")
    elif report.sample_rejects and report.dry_run:
        lines.extend(f"  line {line}: {reason}" for line, reason in report.sample_rejects[:5])
    if report.dry_run and report.preview:
        lines.append("the first rows as read:")
        lines.extend(f"  line {row.line}: {row.name} | {row.signed_at:%Y-%m-%d %H:%M} UTC | "
                     f"{row.country or '-'} | {'named' if row.named else 'withheld'}"
                     for row in report.preview[:_PREVIEW_LINES])
    if report.duplicates_file:
        lines.append(f"repeated signers listed in {report.duplicates_file}")
    if report.unused_columns:
        lines.append(f"columns not read: {', '.join(report.unused_columns)} (to use one: "
                     "--map FIELD=COLUMN)")
    if report.missing_fields:
        lines.append(f"no column found for: {', '.join(report.missing_fields)}")
    lines.extend(f"warning: {w}" for w in report.warnings)
    return "\n".join(lines)


_PREVIEW_LINES = 5
_ORDER_WORDS = {"dmy": "day first", "mdy": "month first", "ymd": "year first"}


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
