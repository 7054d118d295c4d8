"""Cleaned signer names → a printable name, or the reason it is not one (pure).

No I/O. Names come cleaned (see delivery.signers.normalize.clean_text); reasons never repeat
the name.

- `name_problem`: why a cleaned name cannot be a person's name, or None. In this order:
  lossy-encoding debris (a run of two or more "?" or "_", any U+FFFD, or "?"/"_" making up half
  or more of the characters that are not spaces); a hex digest (a token of 16 or more hex digits
  only: SHA-1, MD5…); an ID code (a token holding six digits or more, or three beside letters:
  passports "AN0123456", "123-45-6789"); no letter at all (Unicode category L*: digits,
  punctuation or emoji only). A number of up to five digits beside a name is fine ("John Smith
  2nd", "Anna 1984"), and so are marks, apostrophes, ZWNJ and emoji beside letters.
- `join_name`: first/given and last/family name → the printed name: the other part when one is
  empty; family name first without a space when both are written in CJK scripts (Han, Hiragana,
  Katakana, Hangul; spaces and middle dots aside): "王" + "伟" → "王伟"; otherwise "first last".
- `looks_mojibake`: whether text shows the debris of UTF-8 read as cp1252 or latin-1: a lead
  byte 0xC2–0xDF decoded ("Â"…"ß") followed by a decoded continuation byte 0x80–0xBF ("Ã©",
  "Ã¶", "Ð¸", "Õ¡"), "Â"/"Ã" before a (no-break) space ("Â " is a no-break space, "Ã " an
  "à"), "â€" (’ “ ” –), "ï»¿" (BOM), "ï¿½" (U+FFFD), and "Ã" between two small letters (where
  cleaning dropped the soft hyphen or C1 control of "í", "Á", "Í"…: "MarÃa"). Correct text of
  Latin-1 letters passes ("Zoë", "São Paulo", "Þórður", "Ðào"), since the leads are capitals and
  the continuations are symbols or a few rare letters (Š Œ Ž Ÿ š œ ž ƒ ª µ º). Known false
  positive: a capital of Â–ß right before one of those letters, as an all-capital Czech or
  Slovak name may have ("ÚŠ", "ÓŽ").
"""

from __future__ import annotations

import re
from collections.abc import Iterable

NO_LETTER = "name has no letter"
ENCODING_DEBRIS = ("name holds '??', '__' or '\ufffd' in place of letters (characters lost by an "
                   "export in the wrong encoding: export the file as UTF-8)")
HEX_DIGEST = "name looks like a hash (hex digest), not a name"
ID_CODE = "name holds an ID code or number, not a name"

# One scan finds what a normal name lacks: digits, "?", "_", U+FFFD.
_SUSPECT = re.compile(r"[\d?_\ufffd]")
_DEBRIS_RUN = re.compile(r"[?_]{2}|\ufffd")
_HEX_TOKEN = re.compile(r"(?<!\S)[0-9a-fA-F]{16,}(?!\S)")
# Six digits in a token (a passport or national number: "123-45-6789", "1234567"), or three
# beside letters ("AN0123456", "ID123"). A number alone of up to five digits is not read as an
# ID: lists number their test or placeholder signers ("Signer 1750"), and no ID is that short.
_ID_TOKEN = re.compile(r"(?<!\S)(?:[^\s\d]*\d){6}|(?<!\S)(?=\S*[^\W\d_])(?:[^\s\d]*\d){3}")


def _is_debris(name: str) -> bool:
    if _DEBRIS_RUN.search(name):
        return True
    lost = name.count("?") + name.count("_")
    return lost > 0 and 2 * lost >= len(name) - name.count(" ")


def name_problem(name: str) -> str | None:
    """A cleaned name → why it cannot be a person's name, or None."""
    if _SUSPECT.search(name):
        if _is_debris(name):
            return ENCODING_DEBRIS
        if _HEX_TOKEN.search(name):
            return HEX_DIGEST
        if _ID_TOKEN.search(name):
            return ID_CODE
    elif len(name) >= 16 and _HEX_TOKEN.search(name):  # hex of letters only: "deadbeefcafebabe"
        return HEX_DIGEST
    if name[:1].isalpha() or any(c.isalpha() for c in name):
        return None
    return NO_LETTER


_CJK = (
    "\u1100-\u11ff"  # Hangul Jamo
    "\u2e80-\u2fdf"  # CJK and Kangxi radicals
    "\u3005\u3007\u3021-\u3029\u3038-\u303b"  # 々 〇 and Hangzhou numerals
    "\u3040-\u30ff"  # Hiragana, Katakana (with ・ and ー)
    "\u3130-\u318f"  # Hangul compatibility Jamo
    "\u31f0-\u31ff"  # Katakana phonetic extensions
    "\u3400-\u4dbf\u4e00-\u9fff"  # CJK unified ideographs and extension A
    "\ua960-\ua97f\uac00-\ud7ff"  # Hangul Jamo extended, syllables
    "\uf900-\ufaff"  # CJK compatibility ideographs
    "\uff66-\uffdc"  # halfwidth Katakana and Hangul
    "\U00020000-\U0003ffff"  # CJK extensions B and later
)
_CJK_PART = re.compile(rf"[ \u00b7]*[{_CJK}][{_CJK} \u00b7]*")


def join_name(first: str, last: str) -> str:
    """Cleaned first/given and last/family name → the printed name."""
    if not first or not last:
        return first or last
    if _CJK_PART.fullmatch(first) and _CJK_PART.fullmatch(last):
        return f"{last}{first}"
    return f"{first} {last}"


def _mojibake_pairs() -> frozenset[str]:
    """Every two-character text a UTF-8 lead 0xC2–0xDF and continuation 0x80–0xBF become when
    read as cp1252 or latin-1 (bytes cp1252 leaves undefined are skipped)."""
    pairs: set[str] = set()
    for lead in range(0xC2, 0xE0):
        for cont in range(0x80, 0xC0):
            for codec in ("cp1252", "latin-1"):
                try:
                    pairs.add(bytes((lead, cont)).decode(codec))
                except UnicodeDecodeError:
                    continue
    return frozenset(pairs)


MOJIBAKE_PAIRS = _mojibake_pairs()


def _class(chars: Iterable[str]) -> str:
    return "".join(re.escape(c) for c in sorted(chars))


def _mojibake_regex(pairs: frozenset[str]) -> re.Pattern[str]:
    by_lead: dict[str, set[str]] = {}
    for pair in pairs:
        # A no-break space (cleaned: a space) after "É" or "Ö" ends a capitalised word ("JOSÉ
        # GARCÍA"); only "Â" and "Ã" before one are debris, added below.
        if pair[1] != "\u00a0":
            by_lead.setdefault(pair[0], set()).add(pair[1])
    # Every lead takes the same continuations: one class pair instead of 30 alternatives.
    leads_by_conts: dict[frozenset[str], list[str]] = {}
    for lead, conts in sorted(by_lead.items()):
        leads_by_conts.setdefault(frozenset(conts), []).append(lead)
    alternatives = [f"[{_class(leads)}][{_class(conts)}]" for conts, leads in leads_by_conts.items()]
    alternatives += ["[ÂÃ][ \u00a0]", "â€", "ï»¿", "ï¿½", "(?<=[a-zß-öø-ÿ])Ã(?=[a-zß-öø-ÿ])"]
    return re.compile("|".join(alternatives))


_MOJIBAKE = _mojibake_regex(MOJIBAKE_PAIRS)


def looks_mojibake(text: str) -> bool:
    """Whether text holds typical debris of UTF-8 decoded as cp1252 or latin-1."""
    return not text.isascii() and _MOJIBAKE.search(text) is not None
