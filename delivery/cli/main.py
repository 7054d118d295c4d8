"""Command line → service calls → one clear report. Exit 0 ok, 1 the work failed, 2 bad usage/input."""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import logging
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from delivery.errors import DeliveryError, UsageError

if TYPE_CHECKING:
    from delivery.services.app import App
    from delivery.services.reports import DeliveryReport

    Handler = Callable[[App, argparse.Namespace], int]

# The services (and through them SQLAlchemy, the PDF stack, SMTP) are imported by the commands
# that use them: `--help` and `verify` start in a fraction of a second.

def _now(text: str | None) -> datetime:
    if not text:
        return datetime.now(UTC)
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"--now: '{text}' is not an ISO time like 2026-11-27T10:00:00+04:00") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _json_value(value: object) -> object:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    return str(value)


def _emit(args: argparse.Namespace, data: Any, text: str) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False, default=_json_value) if args.json else text)


def cmd_init(app: App, args: argparse.Namespace) -> int:
    from delivery.services.app import init

    slugs = init(app)
    key_file, fingerprint = app.settings.signer_key_path, app.signer_keys.fingerprint
    _emit(args, {"campaigns": slugs, "database": app.engine.url.render_as_string(),
                 "signer_key_file": str(key_file), "signer_key_fingerprint": fingerprint},
          f"database ready ({app.engine.url.render_as_string()}); campaigns: {', '.join(slugs)}\n"
          f"signer key: {key_file} (fingerprint {fingerprint}): back it up with the database; "
          "without it no stored signer can be recognised again")
    return 0


def cmd_status(app: App, args: argparse.Namespace) -> int:
    from delivery.cli.textreport import status_text
    from delivery.services import reports

    data = reports.status(app, app.campaign(args.campaign), now=datetime.now(UTC))
    _emit(args, data, status_text(data))
    return 0


def cmd_campaigns(app: App, args: argparse.Namespace) -> int:
    from delivery.campaigns.export import campaign_toml

    text = campaign_toml(app.campaign(args.slug))
    out: Path | None = args.out
    if out is None:
        sys.stdout.write(text)
        return 0
    if out.exists() and not args.force:
        raise UsageError(f"{out} exists already: give --force to replace it")
    partial = out.with_name(f".{out.name}.partial")
    try:
        partial.write_text(text, encoding="utf-8")
        os.replace(partial, out)  # a reader never sees half a file
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise UsageError(f"cannot write {out}: {exc.strerror or exc}") from exc
    print(f"campaign {args.slug} written to {out}")
    return 0


def cmd_links(app: App, args: argparse.Namespace) -> int:
    from datetime import timedelta

    from delivery.services import links

    campaign = app.campaign(args.campaign)
    if args.links_command == "extend":
        if args.days is not None and not 1 <= args.days <= 3650:
            raise UsageError("--days: a link is extended by 1 to 3650 days")
        by = timedelta(days=args.days) if args.days is not None else campaign.link_expiry
        until = links.extend(app, campaign, args.ref, args.recipient, by=by, now=_now(None),
                             actor=_actor())
        _emit(args, {"delivery": args.ref, "recipient": args.recipient, "expires_at": until.isoformat()},
              f"the download link to {args.recipient} works until {until:%Y-%m-%d %H:%M} UTC")
        return 0
    links.revoke(app, campaign, args.ref, args.recipient, now=_now(None), actor=_actor())
    _emit(args, {"delivery": args.ref, "recipient": args.recipient, "revoked": True},
          f"the download link to {args.recipient} is withdrawn: it gives nothing more")
    return 0


def cmd_deliveries(app: App, args: argparse.Namespace) -> int:
    from delivery.cli.textreport import deliveries_text
    from delivery.services import deliveries, reports

    campaign = app.campaign(args.campaign)
    action = args.action
    if action == "list":
        data = reports.deliveries(app, campaign, now=datetime.now(UTC))
        _emit(args, data, deliveries_text(data))
        return 0
    if not args.ref:
        raise UsageError(f"deliveries {action} needs a delivery id")
    now = _now(None)
    public_id = deliveries.change(app, campaign, action, args.ref, now=now, actor=_actor())
    if deliveries.needs_work_now(action):
        deliveries.tick(app, campaign, now=now)
    record = reports.delivery(app, campaign, public_id, now=datetime.now(UTC))
    assert record is not None  # change() just found it, and deliveries are never deleted
    _emit(args, record, f"delivery {public_id} {PAST[action]}: now {record.status}"
          + _message_lines(record) + _waiting_hint(record))
    return 0


PAST = {"cancel": "cancelled", "release": "released", "retry": "retried"}


def _message_lines(data: DeliveryReport) -> str:
    return "".join(f"\n  {m.recipient} part {m.part}{' (smaller e-mails)' if m.cut else ''}: {m.status} "
                   f"({m.last_answer or 'no answer yet'})" for m in data.dossier_messages)


def _waiting_hint(data: DeliveryReport) -> str:
    # next_attempt_at is set exactly while a message waits (queued or retry)
    waiting = [m.next_attempt_at for m in data.dossier_messages if m.next_attempt_at]
    if not waiting:
        return ""
    first = min(waiting)
    return (f"\n{len(waiting)} message(s) wait until {first} (send window or retry backoff); "
            "`petition-delivery serve` sends them then, or run `petition-delivery run-due` later")


def cmd_run_due(app: App, args: argparse.Namespace) -> int:
    from delivery.services import deliveries

    now = _now(args.now)
    campaigns = [app.campaign(args.campaign)] if args.campaign else list(app.campaigns.values())
    reports = [deliveries.tick(app, c, now=now) for c in campaigns]
    lines = []
    for r in reports:
        lines.append(f"{r.campaign}: {r.signer_count:,} signers; milestones reached now: "
                     f"{', '.join(f'{m:,}' for m in r.milestones) or 'none'}; created: "
                     f"{', '.join(r.created) or '-'}; built: {', '.join(r.built) or '-'}; "
                     f"failed builds: {', '.join(r.build_failures) or '-'}; sent: {r.send.get('sent', 0)}, "
                     f"retry: {r.send.get('retried', 0)}, failed: {r.send.get('failed', 0)}")
    _emit(args, [r.to_dict() for r in reports], "\n".join(lines))
    return 1 if any(r.build_failures or r.send.get("failed") for r in reports) else 0


def cmd_preview(app: App, args: argparse.Namespace) -> int:
    from delivery.cli.progress import ProgressBar
    from delivery.services.preview import preview

    campaign = app.campaign(args.campaign)
    with ProgressBar("rendering volumes", enabled=not args.json) as bar:
        result = preview(app, campaign, out_dir=args.out, now=_now(None), progress=bar.update)
    text = [f"preview of {result.signer_count:,} signers written to {result.folder}:"]
    text += [f"  {f.name:<45} {f.size:>12,} bytes" + (f"  {f.pages:>6} pages" if f.pages else "")
             for f in result.files]
    _emit(args, result, "\n".join(text))
    return 0


def cmd_send(app: App, args: argparse.Namespace) -> int:
    from delivery.cli.progress import ProgressBar
    from delivery.services import deliveries, reports

    campaign = app.campaign(args.campaign)
    recipients = deliveries.pick_recipients(campaign, args.to or ())
    names = ", ".join(f"{r.name} <{r.email}>" for r in recipients)
    if args.dry_run:
        _emit(args, {"dry_run": True, "recipients": [r.email for r in recipients]},
              f"would send the current dossier to: {names}")
        return 0
    if not args.yes:
        if not sys.stdin.isatty():
            raise UsageError("send asks for confirmation: run it in a terminal, or add --yes")
        answer = input(f"Send the dossier now to {names}? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("nothing sent")
            return 0
    with ProgressBar("rendering volumes", enabled=not args.json) as bar:
        public_id = deliveries.send_now(app, campaign, now=_now(None), to=args.to or (), actor=_actor(),
                                     progress=bar.update)
    data = reports.delivery(app, campaign, public_id, now=datetime.now(UTC))
    assert data is not None  # send_now just made it
    _emit(args, data, f"delivery {public_id}: {data.status}" + _message_lines(data)
          + _waiting_hint(data) + (f"\n{data.error}" if data.error else ""))
    return 0 if data.status in ("done", "sending") else 1


def cmd_smtp(app: App, args: argparse.Namespace) -> int:
    from delivery.services import sending

    if args.smtp_command == "status":
        pauses = sending.paused_accounts(app)
        _emit(args, pauses, "\n".join(f"PAUSED {p.account} since {p.since:%Y-%m-%d %H:%M} UTC: {p.reason}"
                                      for p in pauses) or "sending is not paused")
        return 0
    resumed = sending.resume(app, args.account, now=_now(None), actor=_actor())
    send = resumed.send
    if resumed.paused_again:
        _emit(args, resumed, f"sending through {resumed.account} is paused again: the server refused "
              f"the login once more ({resumed.paused_again}); check DELIVERY_SMTP_USERNAME and "
              "DELIVERY_SMTP_PASSWORD")
        return 1
    _emit(args, resumed, f"sending through {resumed.account} resumed (paused since "
          f"{resumed.paused_since:%Y-%m-%d %H:%M} UTC); sent now: {send.get('sent', 0)}, "
          f"to retry: {send.get('retried', 0)}, failed: {send.get('failed', 0)}")
    return 1 if send.get("failed") else 0


def cmd_signers(app: App, args: argparse.Namespace) -> int:
    from delivery.cli.signers import run

    return run(app, args, _emit, _now(getattr(args, "now", None)), _actor())


def cmd_admin(app: App, args: argparse.Namespace) -> int:
    from delivery.cli.admin import run

    return run(app, args, _emit, _now(None), _actor())


def cmd_verify(app: App | None, args: argparse.Namespace) -> int:
    from delivery.bundle.verify import verify_path

    report = verify_path(Path(args.path), trust=Path(args.trust) if args.trust else None,
                         allow_untrusted=args.allow_untrusted)
    _emit(args, report.to_dict(), "\n".join(report.lines()))
    return 0 if report.ok else 1


def cmd_demo(app: App | None, args: argparse.Namespace) -> int:
    from delivery.cli.demo import run_demo

    return run_demo(Path(args.folder), signers=args.signers, json_output=args.json)


def cmd_serve(app: App, args: argparse.Namespace) -> int:
    from delivery.runtime.serve import serve

    return serve(app, host=args.host, port=args.port, log_format=args.log_format, campaign=args.campaign)


def _actor() -> str:
    import getpass

    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def build_parser() -> argparse.ArgumentParser:
    # Accepted before or after the command; SUPPRESS keeps a subcommand from resetting them.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--campaign", metavar="SLUG", default=argparse.SUPPRESS,
                        help="the campaign (default: the only one)")
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                        help="machine-readable output")
    parser = argparse.ArgumentParser(
        prog="petition-delivery",
        description="Turns a petition and its signers into signed PDF dossiers and delivers them to "
                    "the people the petition addresses. Exit status: 0 done, 1 the work failed, "
                    "2 bad usage or unusable input.")
    parser.add_argument("--campaign", metavar="SLUG", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true", default=False, help=argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, handler: Handler | Callable[[App | None, argparse.Namespace], int], help_: str,
            needs_app: bool = True) -> argparse.ArgumentParser:
        p = sub.add_parser(name, parents=[common], help=help_, description=help_)
        p.set_defaults(handler=handler, needs_app=needs_app)
        return p

    add("init", cmd_init, "create or upgrade the database and load schedules/")
    add("status", cmd_status, "signers, goal, milestones and deliveries")
    p = add("campaigns", cmd_campaigns, "a campaign's settings as a campaign file (TOML)")
    campaigns = p.add_subparsers(dest="campaigns_command", required=True, metavar="ACTION")
    export = campaigns.add_parser("export", parents=[common],
                                  help="print the campaign file, or write it with --out")
    export.add_argument("slug", metavar="SLUG")
    export.add_argument("--out", type=Path, metavar="FILE", help="write it to FILE instead")
    export.add_argument("--force", action="store_true", help="replace FILE if it exists")
    p = add("deliveries", cmd_deliveries, "the delivery log; cancel, release or retry a delivery")
    p.add_argument("action", nargs="?", default="list", choices=("list", "cancel", "release", "retry"))
    p.add_argument("ref", nargs="?", metavar="ID", help="delivery id (as shown by `deliveries`)")
    p = add("links", cmd_links, "extend or withdraw a recipient's download link")
    link_actions = p.add_subparsers(dest="links_command", required=True, metavar="ACTION")
    for action, help_ in (("extend", "the link works longer: by the campaign's link_expiry, or --days"),
                          ("withdraw", "the link gives nothing more, for good")):
        q = link_actions.add_parser(action, parents=[common], help=help_)
        q.add_argument("ref", metavar="ID", help="the delivery (as shown by `deliveries`)")
        q.add_argument("recipient", metavar="ADDRESS", help="the recipient the link was sent to")
        if action == "extend":
            q.add_argument("--days", type=int, metavar="N", help="days to add (1 to 3650)")
    p = add("run-due", cmd_run_due, "one scheduler tick: milestones, builds, sends, retries")
    p.add_argument("--now", metavar="ISO-TIME", help="the clock to use (default: now)")
    p = add("preview", cmd_preview, "build the dossier bundle as it would be sent now, without sending")
    p.add_argument("--out", type=Path, metavar="DIR", help="folder for the files (default: var/preview/…)")
    p = add("send", cmd_send, "a manual delivery now, to all recipients or the named ones")
    p.add_argument("--to", action="append", metavar="ADDRESS", help="a recipient's address (repeatable)")
    p.add_argument("--dry-run", action="store_true", help="say what would be sent; send nothing")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    p = add("verify", cmd_verify, "check a received dossier: PDF, .eml or folder", needs_app=False)
    p.add_argument("path")
    p.add_argument("--trust", metavar="CERT", help="the campaign certificate or its CA (PEM) to trust")
    p.add_argument("--allow-untrusted", action="store_true",
                   help="accept a certificate that no --trust root vouches for (integrity checks only)")
    p = add("demo", cmd_demo, "the whole job on a fresh SQLite database with sample signers",
            needs_app=False)
    p.add_argument("--folder", default="var/demo", help="where the demo lives (default: var/demo)")
    p.add_argument("--signers", type=int, default=5500, help="sample signers (default: 5500)")
    p = add("serve", cmd_serve, "the scheduler and the web admin")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--log-format", choices=("text", "json"), default="text")

    p = add("smtp", cmd_smtp, "whether sending is paused; resume it once the SMTP login is fixed")
    smtp = p.add_subparsers(dest="smtp_command", required=True, metavar="ACTION")
    smtp.add_parser("status", parents=[common], help="the paused SMTP accounts, since when and why")
    resume = smtp.add_parser("resume", parents=[common],
                             help="clear the pause (once the SMTP login is fixed) and send what waited")
    resume.add_argument("--account", metavar="USER@HOST:PORT",
                        help="the paused account, as `smtp status` shows it (default: the only one)")
    from delivery.cli.signers import add_parsers

    p = add("signers", cmd_signers, "import, add, count, remove or purge signers")
    add_parsers(p)
    from delivery.cli.admin import add_token_parsers, add_user_parsers

    add_user_parsers(add("users", cmd_admin, "organizer accounts for the web admin"))
    add_token_parsers(add("tokens", cmd_admin, "API tokens for posting signatures (shown once)"))
    return parser


@contextmanager
def _long_lived() -> Iterator[None]:
    """The collector off while start-up makes what lives as long as the process (modules,
    classes, the parser, settings, the App), then those frozen: walked again and again while
    they are made, and by every later collection, none of them could ever be freed."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


def main(argv: Sequence[str] | None = None) -> int:
    with _long_lived():
        parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # pyHanko logs every untrusted certificate with a traceback; verify reports it in one line.
    logging.getLogger("pyhanko").setLevel(logging.CRITICAL)
    logging.getLogger("pyhanko_certvalidator").setLevel(logging.CRITICAL)
    app: App | None = None
    try:
        if args.needs_app:
            with _long_lived():
                from delivery.services.app import open_app, put_in_force
                from delivery.settings import load_settings

                app = open_app(load_settings())
                put_in_force(app)  # the settings and letters saved in the web admin
        code: int = args.handler(app, args)
        return code
    except UsageError as exc:
        print(f"petition-delivery: {exc}", file=sys.stderr)
        return 2
    except DeliveryError as exc:
        print(f"petition-delivery: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("petition-delivery: interrupted", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # The reader (`| head`) went away: stop quietly, as other command-line tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:
        from delivery.services.app import database_error

        problem = database_error(exc)
        if problem is None:
            raise
        print(f"petition-delivery: database error: {problem} (is DELIVERY_DATABASE_URL right, "
              "and has `petition-delivery init` run?)", file=sys.stderr)
        return 1
    finally:
        if app is not None:
            app.close()


if __name__ == "__main__":
    sys.exit(main())
