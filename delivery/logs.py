"""Log records → lines: readable text (`key=value` extras) or one JSON object per line for collectors.

Signer data never reaches these lines because the code that logs passes ids, counts and
recipients' (officials') addresses only. Exceptions are the one place where data could slip in
uninvited: SQLAlchemy puts a failed statement's parameters (a signer's name, say) into the
exception's text, so tracebacks are written with `safe_error`, which leaves them out.
"""

from __future__ import annotations

import json
import logging
import sys
import traceback
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.exc import StatementError

FORMATS = ("text", "json")
# Attributes every LogRecord has; anything else on a record came in through `extra=`.
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message", "asctime", "taskName", "color_message"}


def safe_error(exc: BaseException) -> str:
    """One line naming the error, without the SQL parameters a database error carries."""
    if isinstance(exc, StatementError):
        cause = exc.orig if exc.orig is not None else exc
        first = str(cause).strip().splitlines()[0] if str(cause).strip() else ""
        return f"{type(cause).__name__}: {first}" if cause is not exc else type(exc).__name__
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def safe_traceback(exc: BaseException) -> str:
    """Stack frames and `safe_error` lines for an exception and its causes, oldest first."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)
    parts = []
    for error in reversed(chain):
        frames = "".join(traceback.format_tb(error.__traceback__))
        parts.append(f"Traceback (most recent call last):\n{frames}{safe_error(error)}")
    return "\nThe above exception led to this one:\n".join(parts)


def extras(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in record.__dict__.items() if k not in _STANDARD and not k.startswith("_")}


def _exception(record: logging.LogRecord) -> str | None:
    if record.exc_info and record.exc_info[1] is not None:
        return safe_traceback(record.exc_info[1])
    return None


class JsonFormatter(logging.Formatter):
    """{"time", "level", "logger", "message", ...extra fields, "error"?} on one line."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in extras(record).items():
            data.setdefault(key, value)
        error = _exception(record)
        if error:
            data["error"] = error
        return json.dumps(data, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """`2026-11-27 10:00:00,123 INFO delivery.runtime.serve: message  campaign=x delivery=y`."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        saved = record.exc_info, record.exc_text
        record.exc_info, record.exc_text = None, None  # formatted by safe_traceback below
        try:
            line = super().format(record)
        finally:
            record.exc_info, record.exc_text = saved
        fields = " ".join(f"{k}={_plain(v)}" for k, v in extras(record).items())
        line = f"{line}  {fields}" if fields else line
        error = _exception(record)
        return f"{line}\n{error}" if error else line


def _plain(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str,
                                                             separators=(",", ":"))
    return json.dumps(text, ensure_ascii=False) if (" " in text or not text) else text


def make_formatter(fmt: str) -> logging.Formatter:
    if fmt not in FORMATS:
        raise ValueError(f"log format '{fmt}' is not one of: {', '.join(FORMATS)}")
    return JsonFormatter() if fmt == "json" else TextFormatter()


LINK_PREFIX = "/d/"


class WithoutQueryStrings(logging.Filter):
    """uvicorn's access lines without the query string: a client may put a token or a password
    there (`?token=…` is refused, but it was already logged). The path stays, the query becomes
    `?…`; a download page's token in the path (/d/TOKEN/…) becomes `…` too."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == "uvicorn.access" and isinstance(record.args, tuple) and len(record.args) >= 3:
            args = list(record.args)
            path = str(args[2])
            if "?" in path:
                path = path.split("?", 1)[0] + "?…"
            if path.startswith(LINK_PREFIX):  # a download page's token is the key to a dossier
                rest = path[len(LINK_PREFIX):]
                end = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))
                path = LINK_PREFIX + "…" + rest[end:]
            args[2] = path
            record.args = tuple(args)
        return True


def configure_logging(fmt: str, *, level: str = "INFO") -> None:
    """Route every logger (ours, uvicorn's, APScheduler's) through one stderr handler."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(make_formatter(fmt))
    handler.addFilter(WithoutQueryStrings())
    root.addHandler(handler)
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    # Their INFO lines repeat our own tick lines or trace library steps (alembic: each of its
    # plugins, at every schema check); keep their warnings.
    for name in ("apscheduler", "weasyprint.progress", "pikepdf", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
