"""SignerInput values and CSV files → signer rows (the store), withdrawals, counts and reports.

The database holds each signer's key as the installation's keyed hash of the in-memory key
(`SignerKeys.stored_key`, HMAC-SHA-256: see delivery.storage.keys): every function that stores or
looks up signers takes the installation's `keys`, so that no path writes or compares a bare digest.

One signer per campaign and key (`uq_signers_campaign_email_key`): a batch is de-duplicated in
memory, then inserted in bulk with `ON CONFLICT DO NOTHING` (SQLite: one executemany; PostgreSQL:
one `INSERT … SELECT FROM unnest(arrays)`), so duplicates are counted exactly (rows attempted −
rows inserted) and any number of importers may race. A withdrawn signer stays withdrawn when
imported again (the row exists: it counts as a duplicate).

`import_csv` stores a file whole or not at all: its accepted rows go, batch by batch, into a
temporary table on the import's connection, and one `INSERT … SELECT … ORDER BY signed_at, line
ON CONFLICT DO NOTHING` stores the new ones, so that the signers of one import are numbered in
the order they signed (ties in file order) and an interrupted import stores nothing (rerun it).
Rows that repeat a signer (an earlier row of the file, by signing time, or one stored before)
are listed in `<input>.duplicates.csv` (line, the line or list it repeats, name, city, country;
no e-mail; mode 0600). Rejected rows go to `<input>.rejects.csv` (UTF-8 with BOM: line, reason,
then the row's original fields; mode 0600). Both files are replaced on each run and removed when
a run has none. `update` gives signers stored before the import (matched by key) the file's
consent, city, country and date of signing, keeping their numbers, and reports their ids.
`dry_run` stages the file the same way and rolls back: exact counts, nothing written, no files.
"""

from __future__ import annotations

import bisect
import csv
import json
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, cast

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    String,
    Table,
    and_,
    case,
    delete,
    func,
    literal,
    select,
    text,
    update,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from delivery.errors import DeliveryError, NotFound, RowRejected
from delivery.signers.normalize import email_key, normalize_email
from delivery.storage import audit
from delivery.storage.db import transaction
from delivery.storage.keys import SignerKeys
from delivery.storage.models import CampaignRow, SignerRow, VolumeFactsRow

if TYPE_CHECKING:
    from delivery.signers.dates import DateOrder
    from delivery.signers.intake import Excluded, Rejected, SignerInput
    from delivery.signers.options import ImportOptions

# The readers of CSV files (delivery.signers.intake, and through it the formats, dates and
# countries) are imported by the functions that read one: `status` and the other commands that
# only count signers start without them.

__all__ = ["ImportReport", "Purgeable", "add_signers", "count_signers", "forget_erased", "import_csv",
           "purge_signers", "purgeable_signers", "withdraw_signer"]

_SIGNERS = cast(Table, SignerRow.__table__)
# 10 columns per row: 2,000 rows stay far below SQLite's 32,766 host parameters.
_ROWS_PER_STATEMENT = 2000
_SAMPLE_REJECTS = 20


@dataclass
class ImportReport:
    imported: int
    duplicates: int
    rejected: int
    rejects_file: Path | None
    dry_run: bool
    # The first rejects (line, reason), so that a dry run can say why without writing a file.
    sample_rejects: list[tuple[int, str]] = field(default_factory=list)
    # Header cells no field was read from, and the fields no column was found for: a file whose
    # "Ort" column went unused must say so, not import empty cities in silence.
    unused_columns: list[str] = field(default_factory=list)
    missing_fields: list[str] = field(default_factory=list)
    excluded: int = 0
    excluded_reasons: dict[str, int] = field(default_factory=dict)
    named: int = 0     # of the new signers: may be named
    withheld: int = 0  # of the new signers: counted, never named
    updated: int = 0
    updated_ids: list[int] = field(default_factory=list)
    duplicates_file: Path | None = None
    date_order: DateOrder | None = None
    timezone: str = "UTC"
    preview: list[PreviewRow] = field(default_factory=list)  # the first rows as read
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return {"imported": self.imported, "duplicates": self.duplicates,
                "rejected": self.rejected, "excluded": self.excluded,
                "excluded_reasons": self.excluded_reasons, "named": self.named,
                "withheld": self.withheld, "updated": self.updated, "dry_run": self.dry_run,
                "rejects_file": str(self.rejects_file) if self.rejects_file else None,
                "duplicates_file": str(self.duplicates_file) if self.duplicates_file else None,
                "date_order": self.date_order.value if self.date_order else None,
                "timezone": self.timezone,
                "sample_rejects": [{"line": line, "reason": reason}
                                   for line, reason in self.sample_rejects],
                "unused_columns": self.unused_columns, "missing_fields": self.missing_fields,
                "warnings": self.warnings}


@dataclass(frozen=True)
class PreviewRow:
    """One row as the import read it (what a dry run shows before anything is stored)."""

    line: int
    name: str
    signed_at: datetime
    country: str
    named: bool


def _unique(signers: Sequence[SignerInput]) -> dict[str, SignerInput]:
    unique: dict[str, SignerInput] = {}
    for signer in signers:
        unique.setdefault(signer.email_key, signer)
    return unique


_PG_INSERT = (
    "INSERT INTO signers (campaign_id, email_key, name, city, country, signed_at, consent, source, "
    "created_at) SELECT %s, u.*, %s FROM unnest(%s::text[], %s::text[], "
    "%s::text[], %s::text[], %s::timestamptz[], %s::boolean[], %s::text[]) "
    "AS u(email_key, name, city, country, signed_at, consent, source) "
    "ON CONFLICT (campaign_id, email_key) DO NOTHING")
_SQLITE_INSERT = (
    "INSERT INTO signers (campaign_id, email_key, name, city, country, signed_at, consent, source, "
    "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (campaign_id, email_key) DO NOTHING")


def add_signers(session: Session, campaign_id: int, signers: Sequence[SignerInput], *,
                now: datetime, keys: SignerKeys) -> tuple[int, int]:
    """Store signers not stored yet → (inserted, duplicates), in the session's transaction."""
    unique = list(_unique(signers).values())
    if not unique:
        return 0, len(signers)
    stored_keys = keys.stored_keys(s.email_key for s in unique)
    session.flush()  # a campaign added in this session must exist for the foreign key
    conn = session.connection()
    dialect = conn.dialect
    # One statement per batch, parameters adapted by the driver: the ORM's per-row work would
    # dominate a million-row import. Rows ignored by ON CONFLICT are not in the rowcount.
    if dialect.name == "postgresql":
        columns = [stored_keys, *([getattr(s, name) for s in unique] for name in
                                  ("name", "city", "country", "signed_at", "consent", "source"))]
        result = conn.exec_driver_sql(_PG_INSERT, (campaign_id, now, *columns))
    elif dialect.name == "sqlite":
        as_text = _SIGNERS.c.signed_at.type.bind_processor(dialect)
        assert as_text is not None
        created = as_text(now)
        result = conn.exec_driver_sql(_SQLITE_INSERT, [
            (campaign_id, key, s.name, s.city, s.country, as_text(s.signed_at),
             s.consent, s.source, created) for key, s in zip(stored_keys, unique, strict=True)])
    else:
        raise NotImplementedError(f"signers on {dialect.name}")
    inserted = result.rowcount
    return inserted, len(signers) - inserted


def withdraw_signer(session: Session, campaign_id: int, email: str, *, now: datetime,
                    actor: str, keys: SignerKeys) -> bool:
    """Mark the signer with this e-mail withdrawn (and audit it) → whether one was found."""
    try:
        key = keys.stored_key(email_key(normalize_email(email)))
    except RowRejected:
        return False  # not an address: no signer can have it
    row = session.execute(select(SignerRow.id, SignerRow.withdrawn_at).where(
        SignerRow.campaign_id == campaign_id, SignerRow.email_key == key)).first()
    if row is None:
        return False
    if row.withdrawn_at is None:
        session.execute(update(SignerRow).where(SignerRow.id == row.id).values(withdrawn_at=now))
    audit.record(session, at=now, actor=actor, action="signers.withdraw", campaign_id=campaign_id,
                 subject=f"signer {row.id}", signer_id=row.id,
                 already_withdrawn=row.withdrawn_at is not None)
    return True


def forget_volume_facts(session: Session, campaign_id: int, signer_ids: Sequence[int]) -> int:
    """Delete the stored facts of every volume holding one of these signers (their rows changed:
    a build must read and draw those volumes again) → how many."""
    ids = sorted(signer_ids)
    facts = session.execute(select(VolumeFactsRow.fingerprint, VolumeFactsRow.first_id,
                                   VolumeFactsRow.last_id)
                            .where(VolumeFactsRow.campaign_id == campaign_id)).all()
    stale = [fact.fingerprint for fact in facts
             if (i := bisect.bisect_left(ids, fact.first_id)) < len(ids) and ids[i] <= fact.last_id]
    for start in range(0, len(stale), _ROWS_PER_STATEMENT):
        session.execute(delete(VolumeFactsRow).where(
            VolumeFactsRow.campaign_id == campaign_id,
            VolumeFactsRow.fingerprint.in_(stale[start:start + _ROWS_PER_STATEMENT])))
    return len(stale)


def count_signers(session: Session, campaign_id: int) -> int:
    """Active signers of the campaign (withdrawn ones excluded)."""
    return session.execute(select(func.count()).select_from(_SIGNERS).where(
        SignerRow.campaign_id == campaign_id, SignerRow.withdrawn_at.is_(None))).scalar_one()


# A spreadsheet runs a cell that starts with one of these as a formula (=HYPERLINK(…) sends the
# reader's data away, +cmd|… starts a program): the rejects file is opened in one on purpose.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def _inert(cell: str) -> str:
    """A cell as text a spreadsheet shows and never evaluates (OWASP's advice: a leading ')."""
    return "'" + cell if cell.startswith(_FORMULA_START) else cell


class _RejectsFile:
    """`<input>.rejects.csv`, written through a temporary name and put in place at the end."""

    def __init__(self, input_path: Path, header: list[str]) -> None:
        self.path = input_path.with_name(input_path.name + ".rejects.csv")
        self._partial = input_path.with_name(input_path.name + ".rejects.csv.partial")
        self._header = header
        self._stream: IO[str] | None = None
        self._writer: Any = None

    def write(self, reject: Rejected) -> None:
        if self._writer is None:
            # The rows quote e-mail addresses: readable by their owner only, whatever the umask.
            self._partial.unlink(missing_ok=True)
            fd = os.open(self._partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            self._stream = os.fdopen(fd, "w", encoding="utf-8-sig", newline="")
            self._writer = csv.writer(self._stream)
            self._writer.writerow(["line", "reason", *map(_inert, self._header)])
        self._writer.writerow([reject.line, _inert(reject.reason), *map(_inert, reject.fields)])

    def finish(self) -> Path | None:
        if self._stream is None:
            self.path.unlink(missing_ok=True)  # a stale file would describe another run
            return None
        self._stream.close()
        os.replace(self._partial, self.path)
        return self.path

    def abort(self) -> None:
        if self._stream is not None:
            self._stream.close()
            self._partial.unlink(missing_ok=True)


class _DuplicatesFile:
    """`<input>.duplicates.csv`: each row that is a signer already counted, with the line (or the
    list) it repeats, and what it would have printed. No e-mail addresses: only line numbers."""

    def __init__(self, input_path: Path) -> None:
        self.path = input_path.with_name(input_path.name + ".duplicates.csv")

    def write(self, rows: Sequence[tuple[int, str, str, str, str]]) -> Path | None:
        if not rows:
            self.path.unlink(missing_ok=True)  # a stale file would describe another run
            return None
        partial = self.path.with_name(self.path.name + ".partial")
        partial.unlink(missing_ok=True)
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8-sig", newline="") as stream:
            writer = csv.writer(stream)
            writer.writerow(["line", "same signer as", "name", "city", "country"])
            for row in rows:
                writer.writerow([row[0], *map(_inert, row[1:])])
        os.replace(partial, self.path)
        return self.path


@contextmanager
def _import_connection(engine: Engine) -> Iterator[Connection]:
    with engine.connect() as conn:
        if engine.dialect.name != "sqlite":
            yield conn
            return
        # Keys are random, so a big import touches index pages everywhere: a 64 MB page cache
        # (default 2 MB) saves a third of the time. The connection is then closed, not pooled.
        conn.exec_driver_sql("PRAGMA cache_size = -65536")
        conn.commit()
        try:
            yield conn
        finally:
            conn.invalidate()


# One import is staged in a temporary table, then stored in one statement ordered by signing
# time: the signers of one file are numbered in the order they signed, and an import is stored
# whole or not at all.
_PG_STAGE = (
    "INSERT INTO import_staging (line, email_key, name, city, country, signed_at, consent, source) "
    "SELECT * FROM unnest(%s::int[], %s::text[], %s::text[], %s::text[], %s::text[], "
    "%s::timestamptz[], %s::boolean[], %s::text[])")
_SQLITE_STAGE = (
    "INSERT INTO import_staging (line, email_key, name, city, country, signed_at, consent, source) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)")


class _Stage:
    """The temporary table of one import, on the import's connection and transaction."""

    def __init__(self, conn: Connection, keys: SignerKeys) -> None:
        self.conn, self.keys = conn, keys
        self.dialect = conn.dialect.name
        timestamp = "timestamptz" if self.dialect == "postgresql" else "text"
        if self.dialect == "postgresql":
            # The one sort by signing time: in memory rather than in temporary files (the
            # default 4 MB spilled a 1,000,000-row import to disk).
            conn.exec_driver_sql("SET LOCAL work_mem = '64MB'")
        conn.exec_driver_sql("DROP TABLE IF EXISTS import_staging")
        conn.exec_driver_sql(
            "CREATE TEMPORARY TABLE import_staging (line integer NOT NULL, email_key text NOT NULL, "
            "name text NOT NULL, city text NOT NULL, country text NOT NULL, "
            f"signed_at {timestamp} NOT NULL, consent boolean NOT NULL, source text NOT NULL)")
        as_text = _SIGNERS.c.signed_at.type.bind_processor(conn.dialect)
        self._as_text = as_text
        self.rows = 0
        # Signers with a larger id were stored by this import: the others were there before.
        self.last_id_before = int(conn.execute(select(func.coalesce(func.max(_SIGNERS.c.id), 0))
                                               ).scalar_one())

    def add(self, batch: Sequence[SignerInput]) -> None:
        stored_keys = self.keys.stored_keys(s.email_key for s in batch)
        if self.dialect == "postgresql":
            columns = [[s.line for s in batch], stored_keys, *(
                [getattr(s, name) for s in batch]
                for name in ("name", "city", "country", "signed_at", "consent", "source"))]
            self.conn.exec_driver_sql(_PG_STAGE, tuple(columns))
        elif self.dialect == "sqlite":
            as_text = self._as_text
            assert as_text is not None
            self.conn.exec_driver_sql(_SQLITE_STAGE, [
                (s.line, key, s.name, s.city, s.country, as_text(s.signed_at), s.consent,
                 s.source) for key, s in zip(stored_keys, batch, strict=True)])
        else:
            raise NotImplementedError(f"signers on {self.dialect}")
        self.rows += len(batch)

    def _param(self, value: datetime) -> object:
        return self._as_text(value) if self._as_text is not None else value

    def store(self, campaign_id: int, now: datetime) -> int:
        """Insert the staged signers not stored yet, earliest signature first → how many."""
        # "WHERE true": SQLite's parser needs it between a SELECT and ON CONFLICT.
        sql = ("INSERT INTO signers (campaign_id, email_key, name, city, country, signed_at, "
               "consent, source, created_at) SELECT :campaign, email_key, name, city, country, "
               "signed_at, consent, source, :now FROM import_staging WHERE true "
               "ORDER BY signed_at, line ON CONFLICT (campaign_id, email_key) DO NOTHING")
        result = self.conn.execute(text(sql), {"campaign": campaign_id, "now": self._param(now)})
        return int(result.rowcount)

    def duplicates(self, campaign_id: int) -> list[tuple[int, str, str, str, str, bool]]:
        """Staged rows that are not new signers: (line, what they repeat, name, city, country,
        consent), after `store` or in a dry run (before anything is stored)."""
        before = self.conn.execute(text(
            "SELECT s.line FROM import_staging s JOIN signers t ON t.campaign_id = :campaign AND "
            "t.email_key = s.email_key AND t.id <= :before"),
            {"campaign": campaign_id, "before": self.last_id_before}).scalars()
        listed = set(before)
        found: list[tuple[int, str, str, str, str, bool]] = []
        groups = self.conn.execute(text(
            "SELECT line, email_key, name, city, country, consent FROM import_staging WHERE email_key "
            "IN (SELECT email_key FROM import_staging GROUP BY email_key HAVING count(*) > 1) "
            "ORDER BY email_key, signed_at, line"))
        first_of: dict[str, int] = {}
        for line, key, name, city, country, consent in groups:
            if line in listed:
                continue
            if key in first_of:
                found.append((line, f"line {first_of[key]}", name, city, country, bool(consent)))
            else:
                first_of[key] = line
        if listed:
            for line, name, city, country, consent in self.conn.execute(text(
                    "SELECT line, name, city, country, consent FROM import_staging "
                    "WHERE line IN (SELECT value FROM json_each(:lines))" if self.dialect == "sqlite"
                    else "SELECT line, name, city, country, consent FROM import_staging "
                    "WHERE line = ANY(:lines)"),
                    {"lines": json.dumps(sorted(listed)) if self.dialect == "sqlite"
                     else sorted(listed)}):
                found.append((line, "the list (stored before)", name, city, country, bool(consent)))
        return sorted(found)

    def update(self, campaign_id: int) -> list[int]:
        """Stored signers (stored before this import) take the staged consent, city, country and
        date of their file's earliest row → the ids changed."""
        self.conn.exec_driver_sql("CREATE INDEX import_staging_key ON import_staging (email_key)")
        result = self.conn.execute(text(
            "UPDATE signers SET consent = s.consent, city = s.city, country = s.country, "
            "signed_at = s.signed_at FROM import_staging s WHERE signers.campaign_id = :campaign "
            "AND signers.email_key = s.email_key AND signers.id <= :before "
            "AND s.line = (SELECT min(o.line) FROM import_staging o WHERE o.email_key = s.email_key) "
            "AND (signers.consent != s.consent OR signers.city != s.city "
            "OR signers.country != s.country OR signers.signed_at != s.signed_at) "
            "RETURNING signers.id"), {"campaign": campaign_id, "before": self.last_id_before})
        return sorted(result.scalars())

    def drop(self) -> None:
        self.conn.exec_driver_sql("DROP TABLE IF EXISTS import_staging")


_PREVIEW_ROWS = 10


def _batches(records: Iterator[SignerInput | Rejected | Excluded], report: ImportReport,
             rejects: _RejectsFile | None, size: int) -> Iterator[list[SignerInput]]:
    from delivery.signers.intake import Excluded, SignerInput

    batch: list[SignerInput] = []
    for record in records:
        if isinstance(record, SignerInput):
            batch.append(record)
            if len(report.preview) < _PREVIEW_ROWS:
                report.preview.append(PreviewRow(record.line, record.name, record.signed_at,
                                                 record.country, record.consent))
            if len(batch) >= size:
                yield batch
                batch = []
        elif isinstance(record, Excluded):
            report.excluded += 1
            report.excluded_reasons[record.reason] = report.excluded_reasons.get(record.reason, 0) + 1
        else:
            report.rejected += 1
            if len(report.sample_rejects) < _SAMPLE_REJECTS:
                report.sample_rejects.append((record.line, record.reason))
            if rejects is not None:
                rejects.write(record)
    yield batch


def import_csv(engine: Engine, campaign_id: int, path: Path, *, now: datetime, keys: SignerKeys,
               options: ImportOptions | None = None, batch_size: int = 5000,
               source: str | None = None,
               before_update: Callable[[Session], None] | None = None) -> ImportReport:
    """A signer CSV + options → its signers stored in one transaction, in order of signing, and
    the rejects and duplicates files beside it → ImportReport.

    With `options.update`, `before_update` runs in the import's transaction before stored rows
    change (to refuse while a build reads them: it raises), and the facts of the volumes holding
    changed signers are deleted in that same transaction, so no build can take the old, named
    volume for the corrected one.

    InputRefused (nothing written) for a file that is not usable as a whole or leaves a decision
    open; DeliveryError when the database fails (nothing is stored: rerun the import).
    """
    from delivery.signers.intake import open_signer_csv
    from delivery.signers.options import ImportOptions

    options = options or ImportOptions()
    if batch_size < 1:
        raise ValueError("batch_size must be positive")
    with transaction(engine) as session:
        if session.get(CampaignRow, campaign_id) is None:
            raise NotFound(f"campaign {campaign_id} does not exist")
    dry_run = options.dry_run
    report = ImportReport(0, 0, 0, None, dry_run)
    with (open_signer_csv(path, options) as signer_csv,
          _import_connection(engine) as conn):
        used = signer_csv.columns.read()
        report.unused_columns = [h for i, h in enumerate(signer_csv.header)
                                 if i not in used and h.strip()]
        report.missing_fields = [f for f in ("email", "city", "country", "signed_at", "consent")
                                 if f not in signer_csv.plan]
        report.date_order = signer_csv.date_order
        report.timezone = signer_csv.zone_name
        rejects = None if dry_run else _RejectsFile(path, signer_csv.header)
        records = signer_csv.records(now=now, source=source or f"import:{path.name}"[:200])
        named = withheld = 0
        try:
            with conn.begin():
                stage = _Stage(conn, keys)
                for batch in _batches(records, report, rejects, batch_size):
                    if batch:
                        stage.add(batch)
                        consenting = sum(s.consent for s in batch)
                        named, withheld = named + consenting, withheld + len(batch) - consenting
                staged = stage.rows
                if dry_run:
                    duplicates = stage.duplicates(campaign_id)
                    report.imported = stage.rows - len(duplicates)
                    if options.update:
                        report.updated = len(stage.update(campaign_id))
                    conn.rollback()
                else:
                    report.imported = stage.store(campaign_id, now)
                    duplicates = stage.duplicates(campaign_id) \
                        if report.imported < stage.rows else []
                    if options.update:
                        with Session(bind=conn) as session:
                            if before_update is not None:
                                before_update(session)
                            report.updated_ids = stage.update(campaign_id)
                            forget_volume_facts(session, campaign_id, report.updated_ids)
                            session.flush()
                        report.updated = len(report.updated_ids)
                    stage.drop()
        except SQLAlchemyError as exc:
            if rejects is not None:
                rejects.abort()
            # The driver's message may quote row values (names): keep only its first line.
            first_line = str(getattr(exc, "orig", None) or type(exc).__name__).splitlines()[0]
            raise DeliveryError(
                f"{path}: import stopped by a database error; nothing was stored; rerun it "
                f"({first_line})") from None
        except BaseException:
            if rejects is not None:
                rejects.abort()
            raise
    # Exact whatever other importers do; the listing names the lines as this import saw them.
    report.duplicates = staged - report.imported
    repeated_named = sum(d[5] for d in duplicates)
    report.named = named - repeated_named
    report.withheld = withheld - (len(duplicates) - repeated_named)
    if signer_csv.mojibake_rows:
        report.warnings.append(
            f"{signer_csv.mojibake_rows:,} rows (the first on line {signer_csv.mojibake_line}) "
            f"hold text like 'Ã©' or 'Ð°', which is what UTF-8 read as {options.encoding} looks "
            "like: check --encoding (the file may well be UTF-8)")
    if not dry_run:
        assert rejects is not None
        report.rejects_file = rejects.finish()
        report.duplicates_file = _DuplicatesFile(path).write([d[:5] for d in duplicates])
    return report


# ---------------------------------------------------------------- retention: erasing signers

# A purged row's key is "purged:<id>": unique as the constraint wants, and never an HMAC (hex
# digits only), so no address, guessed or not, finds the row again.
PURGED_KEY = "purged:"


@dataclass(frozen=True)
class Purgeable:
    """Rows that signed before a time and are not erased yet: how many, and their id range."""

    signers: int
    first_id: int | None
    last_id: int | None


def _not_purged_before(campaign_id: int, before: datetime) -> ColumnElement[bool]:
    return and_(_SIGNERS.c.campaign_id == campaign_id, _SIGNERS.c.signed_at < before,
                _SIGNERS.c.email_key.not_like(PURGED_KEY + "%"))


def purgeable_signers(session: Session, campaign_id: int, *, before: datetime) -> Purgeable:
    """The campaign's signers (withdrawn ones too) who signed before `before`, not erased yet."""
    count, first, last = session.execute(select(
        func.count(), func.min(_SIGNERS.c.id), func.max(_SIGNERS.c.id)).where(
        _not_purged_before(campaign_id, before))).one()
    return Purgeable(int(count), first, last)


def purge_signers(session: Session, campaign_id: int, *, before: datetime,
                  country_kept_from: int) -> Purgeable:
    """Erase the signers who signed before `before` (withdrawn ones too), in the caller's
    transaction → what was erased. Not audited here: the caller records one row for the purge.

    Erased: name, city, e-mail key (the key becomes "purged:<id>"), consent (so the row is a
    withheld line in later dossiers), the time of day of signing (the date stays). Kept: the row,
    its id (its number in the list), its date of signing, withdrawal and source. The country
    stays only when it identifies no one: an ISO country that at least `country_kept_from` of
    the campaign's active signers share; any other country (few signers, or one typed as free
    text, which may name a village) is erased too, and so is every withdrawn row's.
    """
    found = purgeable_signers(session, campaign_id, before=before)
    if not found.signers:
        return found
    conn = session.connection()
    if conn.dialect.name == "sqlite":
        # Overwrite freed bytes with zeros: the old name and key must not stay in the file's
        # free space (see forget_erased for the write-ahead log).
        conn.exec_driver_sql("PRAGMA secure_delete = ON")
    from delivery.signers.countries import iso_country_names

    iso = iso_country_names()
    common = [country for country, _n in conn.execute(
        select(_SIGNERS.c.country, func.count()).where(
            _SIGNERS.c.campaign_id == campaign_id, _SIGNERS.c.withdrawn_at.is_(None),
            _SIGNERS.c.country != "").group_by(_SIGNERS.c.country)
        .having(func.count() >= country_kept_from)) if country in iso]
    country = (case((and_(_SIGNERS.c.withdrawn_at.is_(None), _SIGNERS.c.country.in_(common)),
                     _SIGNERS.c.country), else_="") if common else literal(""))
    if conn.dialect.name == "postgresql":
        day = func.timezone("UTC", func.date_trunc("day", func.timezone("UTC", _SIGNERS.c.signed_at)))
    else:  # the text SQLAlchemy stores on SQLite, with the time set to midnight
        day = func.strftime("%Y-%m-%d 00:00:00.000000", _SIGNERS.c.signed_at)
    result = conn.execute(update(_SIGNERS).where(_not_purged_before(campaign_id, before)).values(
        name="", city="", country=country, consent=False, signed_at=day,
        email_key=literal(PURGED_KEY) + sql_cast(_SIGNERS.c.id, String)))
    return Purgeable(int(result.rowcount), found.first_id, found.last_id)


def forget_erased(engine: Engine) -> None:
    """After a purge has committed: on SQLite, copy the write-ahead log into the database and
    empty it, so that the pages it held from before the purge (names, keys) leave the disk.
    Best effort: a reader holding old pages lets the log empty at a later checkpoint."""
    if engine.dialect.name != "sqlite":
        return
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        cursor.close()
    finally:
        raw.close()
