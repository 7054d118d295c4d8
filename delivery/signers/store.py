"""SignerInput values and CSV files → signer rows (the store), withdrawals, counts and reports.

The database holds each signer's key as the installation's keyed hash of the in-memory key
(`SignerKeys.stored_key`, HMAC-SHA-256: see delivery.storage.keys): every function that stores or
looks up signers takes the installation's `keys`, so that no path writes or compares a bare digest.

One signer per campaign and key (`uq_signers_campaign_email_key`): a batch is de-duplicated in
memory, then inserted in bulk with `ON CONFLICT DO NOTHING` (SQLite: one executemany; PostgreSQL:
one `INSERT … SELECT FROM unnest(arrays)`), so duplicates are counted exactly (rows attempted −
rows inserted) and any number of importers may race. A withdrawn signer stays withdrawn when
imported again (the row exists: it counts as a duplicate).

`import_csv` commits one transaction per batch: an interrupted import keeps whole batches only,
and rerunning it skips what is already stored. Rejected rows go to `<input>.rejects.csv` (UTF-8
with BOM: line, reason, then the row's original fields; mode 0600), replaced on each run and
removed when a run has no rejects. `dry_run` writes nothing: no rows, no rejects file; it reports what an
import would do (duplicates inside the file are found with 64-bit key prefixes).
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any, cast

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    String,
    Table,
    and_,
    case,
    func,
    literal,
    select,
    update,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from delivery.errors import DeliveryError, NotFound, RowRejected
from delivery.signers.intake import Rejected, SignerInput, open_signer_csv, parse_column_map
from delivery.signers.normalize import COUNTRIES, email_key, normalize_email
from delivery.storage import audit
from delivery.storage.db import transaction
from delivery.storage.keys import SignerKeys
from delivery.storage.models import CampaignRow, SignerRow

__all__ = ["ImportReport", "Purgeable", "add_signers", "count_signers", "forget_erased", "import_csv",
           "parse_column_map", "purge_signers", "purgeable_signers", "withdraw_signer"]

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

    def to_dict(self) -> dict[str, object]:
        return {"imported": self.imported, "duplicates": self.duplicates,
                "rejected": self.rejected, "dry_run": self.dry_run,
                "rejects_file": str(self.rejects_file) if self.rejects_file else None,
                "sample_rejects": [{"line": line, "reason": reason}
                                   for line, reason in self.sample_rejects],
                "unused_columns": self.unused_columns, "missing_fields": self.missing_fields}


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


def _existing_keys(session: Session, campaign_id: int, stored_keys: Sequence[str]) -> int:
    found = 0
    for start in range(0, len(stored_keys), _ROWS_PER_STATEMENT):
        chunk = stored_keys[start:start + _ROWS_PER_STATEMENT]
        found += session.execute(select(func.count()).select_from(_SIGNERS).where(
            SignerRow.campaign_id == campaign_id, SignerRow.email_key.in_(chunk))).scalar_one()
    return found


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


class _Importer:
    """Writes batches through one connection, one transaction per batch."""

    def __init__(self, conn: Connection, campaign_id: int, report: ImportReport, now: datetime,
                 keys: SignerKeys):
        self.conn, self.campaign_id, self.report, self.now = conn, campaign_id, report, now
        self.keys = keys
        self.seen: set[int] = set()  # dry run only: 64-bit key prefixes met in earlier batches

    def flush(self, batch: list[SignerInput]) -> None:
        if not batch:
            return
        with self.conn.begin(), Session(bind=self.conn) as session:
            if self.report.dry_run:
                self._count_only(session, batch)
                return
            inserted, duplicates = add_signers(session, self.campaign_id, batch, now=self.now,
                                               keys=self.keys)
        # Counted once committed: a commit that fails (a full disk) saved none of them.
        self.report.imported += inserted
        self.report.duplicates += duplicates

    def _count_only(self, session: Session, batch: list[SignerInput]) -> None:
        fresh = [k for k in _unique(batch) if int(k[:16], 16) not in self.seen]
        self.seen.update(int(k[:16], 16) for k in fresh)
        stored = _existing_keys(session, self.campaign_id, self.keys.stored_keys(fresh))
        self.report.imported += len(fresh) - stored
        self.report.duplicates += len(batch) - (len(fresh) - stored)


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


def _batches(records: Iterator[SignerInput | Rejected], report: ImportReport,
             rejects: _RejectsFile | None, size: int) -> Iterator[list[SignerInput]]:
    batch: list[SignerInput] = []
    for record in records:
        if isinstance(record, Rejected):
            report.rejected += 1
            if len(report.sample_rejects) < _SAMPLE_REJECTS:
                report.sample_rejects.append((record.line, record.reason))
            if rejects is not None:
                rejects.write(record)
            continue
        batch.append(record)
        if len(batch) >= size:
            yield batch
            batch = []
    yield batch


def import_csv(engine: Engine, campaign_id: int, path: Path, *, now: datetime, keys: SignerKeys,
               encoding: str | None = None, column_map: Mapping[str, str] | None = None,
               dry_run: bool = False, batch_size: int = 5000,
               source: str | None = None) -> ImportReport:
    """A signer CSV → rows stored batch by batch, rejects beside it → ImportReport.

    InputRefused (nothing written) for a file that is not usable as a whole; DeliveryError when
    the database fails mid-way (the batches before it stay, the failing one is rolled back).
    """
    if batch_size < 1:
        raise ValueError("batch_size must be positive")
    with transaction(engine) as session:
        if session.get(CampaignRow, campaign_id) is None:
            raise NotFound(f"campaign {campaign_id} does not exist")
    report = ImportReport(0, 0, 0, None, dry_run)
    with (open_signer_csv(path, encoding=encoding, column_map=column_map) as signer_csv,
          _import_connection(engine) as conn):
        used = set(signer_csv.plan.values())
        report.unused_columns = [h for i, h in enumerate(signer_csv.header) if i not in used and h.strip()]
        has_name = "name" in signer_csv.plan or "first_name" in signer_csv.plan
        report.missing_fields = [f for f in ("email", "city", "country", "signed_at")
                                 if f not in signer_csv.plan] if has_name else []
        importer = _Importer(conn, campaign_id, report, now, keys)
        rejects = None if dry_run else _RejectsFile(path, signer_csv.header)
        records = signer_csv.records(now=now, source=source or f"import:{path.name}"[:200])
        try:
            for batch in _batches(records, report, rejects, batch_size):
                importer.flush(batch)
        except SQLAlchemyError as exc:
            if rejects is not None:
                rejects.abort()
            # The driver's message may quote row values (names): keep only its first line.
            first_line = str(getattr(exc, "orig", None) or type(exc).__name__).splitlines()[0]
            raise DeliveryError(
                f"{path}: import stopped by a database error after {report.imported} new signers "
                f"were saved; the failing batch was rolled back; rerun to resume ({first_line})"
            ) from None
        except BaseException:
            if rejects is not None:
                rejects.abort()
            raise
    if rejects is not None:
        report.rejects_file = rejects.finish()
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


def _iso_country_names() -> frozenset[str]:
    """The canonical names intake gives ISO 3166-1 countries (the third field of COUNTRIES)."""
    return frozenset(entry.split("|")[2] for entry in COUNTRIES.replace("\n", "").split(";")
                     if entry.count("|") >= 2)


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
    iso = _iso_country_names()
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
