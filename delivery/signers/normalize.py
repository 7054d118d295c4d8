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
  SHA-256 hex of "noemail:" + name + "|" + city + "|" + country, each cleaned as above and
  case-folded (country in its canonical form), so the same person and place without an e-mail
  counts once. An e-mail cannot contain ":" and so never collides with such a key.
- Country: an ISO 3166-1 alpha-2 or alpha-3 code, the ISO English short name, or a common alias
  (case-insensitive, dots ignored: "am", "ARM", "Armenia", "Հայաստան", "U.S.A.") becomes the one
  canonical English short name in `COUNTRIES` (iso-codes' common name where it has one: "Iran",
  "South Korea"). Anything else is kept as typed, cleaned (people write "Kurdistan", "Scotland").
- Dates: empty → `now`; ISO 8601 ("2026-11-27", "2026-11-27T14:30:00+04:00", "…Z", "… UTC");
  day first, never month first: "27/11/2026", "27.11.2026", "27-11-2026" (optionally with
  " HH:MM[:SS]"), "2026/11/27", "27 Nov 2026", "27 November 2026", and "Nov 27, 2026". A time
  without a zone is UTC. Later than `now` + 5 minutes of clock skew is rejected.
- Consent: yes/no, y/n, true/false, t/f, 1/0, on/off (any case); empty or absent = yes (the
  organiser's export lists people who signed publicly unless it says otherwise); anything else is
  rejected.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from datetime import UTC, datetime, timedelta

from delivery.errors import RowRejected

MAX_NAME = 200
MAX_PLACE = 100
MAX_EMAIL = 254
CLOCK_SKEW = timedelta(minutes=5)

# alpha-2|alpha-3|canonical name|aliases…; entries separated by ";". From Debian iso-codes
# (ISO 3166-1, 249 entries) plus common aliases and a few names in the countries' own languages.
COUNTRIES = """
AW|ABW|Aruba;AF|AFG|Afghanistan;AO|AGO|Angola;AI|AIA|Anguilla;AX|ALA|Åland Islands;
AL|ALB|Albania;AD|AND|Andorra;AE|ARE|United Arab Emirates|UAE;AR|ARG|Argentina;
AM|ARM|Armenia|Հայաստան|Армения;AS|ASM|American Samoa;AQ|ATA|Antarctica;
TF|ATF|French Southern Territories;AG|ATG|Antigua and Barbuda;AU|AUS|Australia;
AT|AUT|Austria|Österreich;AZ|AZE|Azerbaijan;BI|BDI|Burundi;BE|BEL|Belgium|België|Belgique;
BJ|BEN|Benin;BQ|BES|Bonaire, Sint Eustatius and Saba;BF|BFA|Burkina Faso;BD|BGD|Bangladesh;
BG|BGR|Bulgaria;BH|BHR|Bahrain;BS|BHS|Bahamas;BA|BIH|Bosnia and Herzegovina;
BL|BLM|Saint Barthélemy;BY|BLR|Belarus|Беларусь;BZ|BLZ|Belize;BM|BMU|Bermuda;
BO|BOL|Bolivia|Bolivia, Plurinational State of;BR|BRA|Brazil;BB|BRB|Barbados;
BN|BRN|Brunei Darussalam|Brunei;BT|BTN|Bhutan;BV|BVT|Bouvet Island;BW|BWA|Botswana;
CF|CAF|Central African Republic;CA|CAN|Canada;CC|CCK|Cocos (Keeling) Islands;
CH|CHE|Switzerland|Schweiz|Suisse|Svizzera;CL|CHL|Chile;CN|CHN|China;
CI|CIV|Côte d'Ivoire|Ivory Coast|Cote d'Ivoire;CM|CMR|Cameroon;
CD|COD|Congo, The Democratic Republic of the|DR Congo|DRC|Democratic Republic of the Congo;
CG|COG|Congo|Republic of the Congo|Congo-Brazzaville;CK|COK|Cook Islands;CO|COL|Colombia;
KM|COM|Comoros;CV|CPV|Cabo Verde|Cape Verde;CR|CRI|Costa Rica;CU|CUB|Cuba;CW|CUW|Curaçao;
CX|CXR|Christmas Island;KY|CYM|Cayman Islands;CY|CYP|Cyprus;CZ|CZE|Czechia|Czech Republic|Česko;
DE|DEU|Germany|Deutschland;DJ|DJI|Djibouti;DM|DMA|Dominica;DK|DNK|Denmark|Danmark;
DO|DOM|Dominican Republic;DZ|DZA|Algeria;EC|ECU|Ecuador;EG|EGY|Egypt;ER|ERI|Eritrea;
EH|ESH|Western Sahara;ES|ESP|Spain|España;EE|EST|Estonia;ET|ETH|Ethiopia;FI|FIN|Finland|Suomi;
FJ|FJI|Fiji;FK|FLK|Falkland Islands (Malvinas)|Falkland Islands;
FR|FRA|France|République française;FO|FRO|Faroe Islands;FM|FSM|Micronesia, Federated States of;
GA|GAB|Gabon;GB|GBR|United Kingdom|UK|U.K.|Great Britain|Britain;
GE|GEO|Georgia|Sakartvelo|საქართველო;GG|GGY|Guernsey;GH|GHA|Ghana;GI|GIB|Gibraltar;
GN|GIN|Guinea;GP|GLP|Guadeloupe;GM|GMB|Gambia;GW|GNB|Guinea-Bissau;GQ|GNQ|Equatorial Guinea;
GR|GRC|Greece|Ελλάδα;GD|GRD|Grenada;GL|GRL|Greenland;GT|GTM|Guatemala;GF|GUF|French Guiana;
GU|GUM|Guam;GY|GUY|Guyana;HK|HKG|Hong Kong;HM|HMD|Heard Island and McDonald Islands;
HN|HND|Honduras;HR|HRV|Croatia;HT|HTI|Haiti;HU|HUN|Hungary;ID|IDN|Indonesia;IM|IMN|Isle of Man;
IN|IND|India;IO|IOT|British Indian Ocean Territory;IE|IRL|Ireland;
IR|IRN|Iran|Iran, Islamic Republic of|Persia;IQ|IRQ|Iraq;IS|ISL|Iceland;IL|ISR|Israel;
IT|ITA|Italy|Italia;JM|JAM|Jamaica;JE|JEY|Jersey;JO|JOR|Jordan;JP|JPN|Japan;KZ|KAZ|Kazakhstan;
KE|KEN|Kenya;KG|KGZ|Kyrgyzstan;KH|KHM|Cambodia;KI|KIR|Kiribati;KN|KNA|Saint Kitts and Nevis;
KR|KOR|South Korea|Korea, Republic of|Korea, South;KW|KWT|Kuwait;
LA|LAO|Laos|Lao People's Democratic Republic|Lao PDR;LB|LBN|Lebanon;LR|LBR|Liberia;LY|LBY|Libya;
LC|LCA|Saint Lucia;LI|LIE|Liechtenstein;LK|LKA|Sri Lanka;LS|LSO|Lesotho;LT|LTU|Lithuania;
LU|LUX|Luxembourg;LV|LVA|Latvia;MO|MAC|Macao;MF|MAF|Saint Martin (French part);MA|MAR|Morocco;
MC|MCO|Monaco;MD|MDA|Moldova|Moldova, Republic of;MG|MDG|Madagascar;MV|MDV|Maldives;
MX|MEX|Mexico;MH|MHL|Marshall Islands;MK|MKD|North Macedonia|Macedonia;ML|MLI|Mali;MT|MLT|Malta;
MM|MMR|Myanmar|Burma;ME|MNE|Montenegro;MN|MNG|Mongolia;MP|MNP|Northern Mariana Islands;
MZ|MOZ|Mozambique;MR|MRT|Mauritania;MS|MSR|Montserrat;MQ|MTQ|Martinique;MU|MUS|Mauritius;
MW|MWI|Malawi;MY|MYS|Malaysia;YT|MYT|Mayotte;NA|NAM|Namibia;NC|NCL|New Caledonia;NE|NER|Niger;
NF|NFK|Norfolk Island;NG|NGA|Nigeria;NI|NIC|Nicaragua;NU|NIU|Niue;
NL|NLD|Netherlands|Holland|Nederland|The Netherlands;NO|NOR|Norway|Norge;NP|NPL|Nepal;
NR|NRU|Nauru;NZ|NZL|New Zealand;OM|OMN|Oman;PK|PAK|Pakistan;PA|PAN|Panama;PN|PCN|Pitcairn;
PE|PER|Peru;PH|PHL|Philippines;PW|PLW|Palau;PG|PNG|Papua New Guinea;PL|POL|Poland|Polska;
PR|PRI|Puerto Rico;KP|PRK|North Korea|Korea, Democratic People's Republic of|Korea, North;
PT|PRT|Portugal;PY|PRY|Paraguay;PS|PSE|Palestine, State of|Palestine;PF|PYF|French Polynesia;
QA|QAT|Qatar;RE|REU|Réunion;RO|ROU|Romania;RU|RUS|Russian Federation|Russia|Россия;
RW|RWA|Rwanda;SA|SAU|Saudi Arabia;SD|SDN|Sudan;SN|SEN|Senegal;SG|SGP|Singapore;
GS|SGS|South Georgia and the South Sandwich Islands;
SH|SHN|Saint Helena, Ascension and Tristan da Cunha;SJ|SJM|Svalbard and Jan Mayen;
SB|SLB|Solomon Islands;SL|SLE|Sierra Leone;SV|SLV|El Salvador;SM|SMR|San Marino;SO|SOM|Somalia;
PM|SPM|Saint Pierre and Miquelon;RS|SRB|Serbia;SS|SSD|South Sudan;ST|STP|Sao Tome and Principe;
SR|SUR|Suriname;SK|SVK|Slovakia;SI|SVN|Slovenia;SE|SWE|Sweden|Sverige;SZ|SWZ|Eswatini|Swaziland;
SX|SXM|Sint Maarten (Dutch part);SC|SYC|Seychelles;SY|SYR|Syria|Syrian Arab Republic;
TC|TCA|Turks and Caicos Islands;TD|TCD|Chad;TG|TGO|Togo;TH|THA|Thailand;TJ|TJK|Tajikistan;
TK|TKL|Tokelau;TM|TKM|Turkmenistan;TL|TLS|Timor-Leste;TO|TON|Tonga;TT|TTO|Trinidad and Tobago;
TN|TUN|Tunisia;TR|TUR|Türkiye|Turkey|Turkiye;TV|TUV|Tuvalu;
TW|TWN|Taiwan|Taiwan, Province of China;TZ|TZA|Tanzania|Tanzania, United Republic of;
UG|UGA|Uganda;UA|UKR|Ukraine|Україна|Ukraina;UM|UMI|United States Minor Outlying Islands;
UY|URY|Uruguay;US|USA|United States|USA|U.S.|U.S.A.|America|United States of America;
UZ|UZB|Uzbekistan;VA|VAT|Holy See (Vatican City State)|Vatican|Vatican City|Holy See;
VC|VCT|Saint Vincent and the Grenadines;VE|VEN|Venezuela|Venezuela, Bolivarian Republic of;
VG|VGB|Virgin Islands, British;VI|VIR|Virgin Islands, U.S.;VN|VNM|Vietnam|Viet Nam;
VU|VUT|Vanuatu;WF|WLF|Wallis and Futuna;WS|WSM|Samoa;YE|YEM|Yemen;ZA|ZAF|South Africa;
ZM|ZMB|Zambia;ZW|ZWE|Zimbabwe;
"""


def _country_key(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).casefold().replace(".", " ").split())


def _country_table() -> dict[str, str]:
    table: dict[str, str] = {}
    for entry in COUNTRIES.replace("\n", "").split(";"):
        if entry:
            alpha2, alpha3, canonical, *aliases = entry.split("|")
            for spelling in (alpha2, alpha3, canonical, *aliases):
                table[_country_key(spelling)] = canonical
    return table


_COUNTRY_BY_KEY = _country_table()
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


def canonical_country(value: str) -> str:
    """A cleaned country (name, code or alias) → its canonical English short name, or itself."""
    return _COUNTRY_BY_KEY.get(_country_key(value), value) if value else value


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


def anonymous_key(name: str, city: str, country: str) -> str:
    """The key of a signer without an e-mail: cleaned name, city and country, case-folded."""
    parts = (unicodedata.normalize("NFC", clean_text(p).casefold()) for p in (name, city, country))
    return _sha256("noemail:" + "|".join(parts))


_MONTHS = {name: i for i, names in enumerate((
    ("jan", "january"), ("feb", "february"), ("mar", "march"), ("apr", "april"), ("may",),
    ("jun", "june"), ("jul", "july"), ("aug", "august"), ("sep", "sept", "september"),
    ("oct", "october"), ("nov", "november"), ("dec", "december")), start=1) for name in names}
_TIME = r"(?:[ T](?P<hh>\d{1,2}):(?P<mi>\d{2})(?::(?P<ss>\d{2}))?)?"
_DAY_FIRST = re.compile(r"(?P<d>\d{1,2})[./-](?P<m>\d{1,2})[./-](?P<y>\d{4})" + _TIME)
_DAY_MONTH_NAME = re.compile(r"(?P<d>\d{1,2})\.? (?P<mon>[^\W\d_]+)\.?,? (?P<y>\d{4})" + _TIME)
_MONTH_NAME_DAY = re.compile(r"(?P<mon>[^\W\d_]+)\.? (?P<d>\d{1,2}),? (?P<y>\d{4})" + _TIME)
_UTC_SUFFIX = re.compile(r"\s*(?:UTC|GMT)\Z", re.IGNORECASE)


def _from_match(match: re.Match[str]) -> datetime:
    groups = match.groupdict()
    month = int(groups["m"]) if groups.get("m") else _MONTHS.get(groups["mon"].casefold(), 0)
    return datetime(int(groups["y"]), month, int(groups["d"]), int(groups["hh"] or 0),
                    int(groups["mi"] or 0), int(groups["ss"] or 0))


def parse_date_text(text: str) -> datetime:
    """A date as written → datetime (naive when the text has no zone); ValueError if unreadable."""
    text = " ".join(text.split())
    if (bare := _UTC_SUFFIX.sub("", text)) != text:
        return parse_date_text(bare).replace(tzinfo=UTC)
    if text[:4].isdigit():
        try:
            return datetime.fromisoformat(text)
        except ValueError:  # 2026/11/27 and 2026.11.27 are written too
            return datetime.fromisoformat(text[:10].replace("/", "-").replace(".", "-") + text[10:])
    for pattern in (_DAY_FIRST, _DAY_MONTH_NAME, _MONTH_NAME_DAY):
        if match := pattern.fullmatch(text):
            return _from_match(match)
    raise ValueError(text)


def _quoted(value: str, limit: int) -> str:
    """A bad value for a reject reason; reasons reach reports and logs, addresses must not."""
    return "(it holds an e-mail address)" if email_like(clean_text(value)) \
        else repr(value.strip()[:limit])


def parse_signed_at(value: object, *, now: datetime) -> datetime:
    """str | datetime | None → an aware UTC datetime not after now + skew (empty → now)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return now
    if isinstance(value, datetime):
        when = value
    elif isinstance(value, str):
        try:
            when = parse_date_text(value)
        except ValueError:
            raise RowRejected(f"unreadable date {_quoted(value, 40)}") from None
    else:
        raise RowRejected("unreadable date")
    try:
        when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    except OverflowError:
        raise RowRejected("signing date is out of range") from None
    if when > now + CLOCK_SKEW:
        raise RowRejected("signing date is in the future")
    return when


_CONSENT = {"yes": True, "y": True, "true": True, "t": True, "1": True, "on": True,
            "no": False, "n": False, "false": False, "f": False, "0": False, "off": False}


def parse_consent(value: object) -> bool:
    if value is None or isinstance(value, bool):
        return value is not False
    if isinstance(value, str):
        text = value.strip().casefold()
        if not text:
            return True
        if text in _CONSENT:
            return _CONSENT[text]
        raise RowRejected(f"unreadable consent value {_quoted(value, 20)}")
    raise RowRejected("unreadable consent value")
