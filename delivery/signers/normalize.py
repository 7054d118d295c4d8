"""Raw signer values (text from a CSV cell, a form, the CLI) → normalised, validated values (pure).

No I/O and no clock: the caller passes `now`. Every failure raises `RowRejected(reason)` with a
short reason that never repeats the name or e-mail it is about.

Rules:
- Text (names, cities, countries): NFC; control characters (Cc) are dropped, except that
  tabs, newlines and other Unicode white space become one space; invisible format characters (Cf:
  bidi embeddings and overrides U+202A–U+202E, isolates U+2066–U+2069, marks, zero-width space,
  soft hyphen, word joiner, BOM…) are dropped. Two exceptions keep what scripts need: ZWNJ/ZWJ
  (U+200C/U+200D) stay when they sit between two visible characters (Persian and Indic words,
  emoji sequences), and tag characters stay inside an emoji tag sequence (🏴 + tags, subdivision
  flags). Then leading/trailing white space is trimmed and inner runs collapse to one space.
  Limits, counted in characters after cleaning: name ≤ 200 (and not empty), city and country ≤ 100.
- E-mail: optional. Normalised form = NFC, trimmed, case-folded (then NFC again); it must look like
  local@domain.tld (local ≤ 64, whole ≤ 254, no white space, controls or quotes; IDN domains
  allowed).
- No e-mail in printed text: a name, city or country holding anything like an e-mail address
  (`email_like`: an at sign, or the full-width ＠ or small ﹫, with a visible character on each
  side, after cleaning) is rejected (`check_printed`: `EmailInText`, naming the field): they are
  printed in dossiers sent to a government, and a merged CSV row carries other signers'
  addresses there. Reasons quoting a bad date or consent value leave out such a value too.
- Signer key (`email_key`): SHA-256 hex of the normalised e-mail. Without an e-mail:
  SHA-256 hex of "noemail:" + name + "|" + city + "|" + country (+ "|" + each identifying cell,
  "postcode=…", when the file has one), each cleaned as above and case-folded (country in its
  canonical form), so the same person and place without an e-mail counts once. An e-mail
  cannot contain ":" and so never collides with such a key.
- Countries, dates and consent answers are read by delivery.signers.countries, .dates and
  .consent; names are checked by delivery.signers.names.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Sequence

from delivery.errors import RowRejected

MAX_NAME = 200
MAX_PLACE = 100
MAX_EMAIL = 254

_ZW_JOINERS = frozenset("\u200c\u200d")
_BLACK_FLAG = "\U0001f3f4"


def _is_tag(ch: str) -> bool:
    return "\U000e0020" <= ch <= "\U000e007f"


def _strip_invisible(text: str) -> str:
    out: list[str] = []
    last = len(text) - 1
    for i, ch in enumerate(text):
        if ch.isspace():
            out.append(" ")
            continue
        category = unicodedata.category(ch)
        if category == "Cc":
            continue
        if category == "Cf":
            if ch in _ZW_JOINERS:
                before = out[-1] if out else " "
                after = text[i + 1] if i < last else " "
                if before.isspace() or before in _ZW_JOINERS or not after.isprintable() \
                        or after.isspace() or after in _ZW_JOINERS:
                    continue
            elif not (_is_tag(ch) and out and (out[-1] == _BLACK_FLAG or _is_tag(out[-1]))):
                continue
        out.append(ch)
    return "".join(out)


def clean_text(value: str) -> str:
    """Text → NFC, invisible characters removed (module rules), white space trimmed, collapsed."""
    # Cc and Cf are not printable (nor is any white space but " "): most text takes no loop.
    if value.isprintable():
        if value.isascii():
            return " ".join(value.split())
    else:
        value = _strip_invisible(value)
    return " ".join(unicodedata.normalize("NFC", value).split())


class EmailInText(RowRejected):
    """A printed field (name, city, country) holds an e-mail address or something like one."""

    def __init__(self, label: str) -> None:
        super().__init__(f"{label} holds an e-mail address (or text like one), which must never "
                         "appear in a dossier")
        self.label = label


_AT_SIGNS = "@\uff20\ufe6b"  # @, full-width ＠, small ﹫: all read as an address
_EMAIL_LIKE = re.compile(rf"[^\s{_AT_SIGNS}][{_AT_SIGNS}][^\s{_AT_SIGNS}]")


def email_like(text: str) -> bool:
    """Whether `text` holds anything like an e-mail address: an at sign between two visible
    characters. Deliberately wider than a valid address: "ann@example" or "a＠b.org" identify
    a person as well."""
    # Nearly every text has no at sign at all: two substring scans, no regular expression.
    if "@" not in text and (text.isascii() or ("\uff20" not in text and "\ufe6b" not in text)):
        return False
    return _EMAIL_LIKE.search(text) is not None


def clean_field(value: str, label: str, limit: int) -> str:
    text = clean_text(value)
    if len(text) > limit:
        raise RowRejected(f"{label} longer than {limit} characters")
    return text


def check_printed(name: str, city: str, country: str) -> None:
    """EmailInText, naming the field, if the cleaned name, city or country is e-mail-like."""
    # One test of the three joined: a line break is white space, so no match spans two.
    if email_like(f"{name}\n{city}\n{country}"):
        raise EmailInText(next(label for label, text in (
            ("name", name), ("city", city), ("country", country)) if email_like(text)))


_LOCAL = r"[^\s@<>()\[\],;:\"\\]{1,64}"
_LABEL = r"[^\W_](?:[\w-]{0,61}[^\W_])?"
_EMAIL = re.compile(rf"(?P<local>{_LOCAL})@(?:{_LABEL}\.)+(?:[^\W\d_]{{2,63}}|xn--[\w-]{{1,59}})")


def normalize_email(value: str) -> str:
    """An e-mail as typed → NFC, trimmed, case-folded; RowRejected when it is not an address."""
    email = unicodedata.normalize("NFC", unicodedata.normalize("NFC", value.strip()).casefold())
    match = _EMAIL.fullmatch(email)
    if (match is None or len(email) > MAX_EMAIL or not email.isprintable()
            or ".." in match["local"] or match["local"].startswith(".")
            or match["local"].endswith(".")):
        raise RowRejected("invalid e-mail address")
    return email


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def email_key(normalized_email: str) -> str:
    return _sha256(normalized_email)


def anonymous_key(name: str, city: str, country: str, identity: Sequence[str] = ()) -> str:
    """The key of a signer without an e-mail: cleaned name, city and country, case-folded, and
    the identifying cells (postcode, phone, row id) when the file has them."""
    parts = [unicodedata.normalize("NFC", clean_text(p).casefold())
             for p in (name, city, country, *identity)]
    return _sha256("noemail:" + "|".join(parts))


def quote_value(value: str, limit: int) -> str:
    """A bad value for a reject reason; reasons reach reports and logs, addresses must not."""
    return "(it holds an e-mail address)" if email_like(clean_text(value)) \
        else repr(value.strip()[:limit])
