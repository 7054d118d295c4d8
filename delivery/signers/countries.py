"""A country as a signer typed it (a name in any language, an ISO code) → its one canonical English name (pure).

`canonical_country` takes a cleaned text (`normalize.clean_text`) and compares it by a key:
NFC, case-folded, dots read as spaces, inner white space collapsed, typographic apostrophes read
as "'". It recognises, for the ISO 3166-1 territories of `COUNTRY_CODES` (plus Kosovo, XK):
- the alpha-2 and alpha-3 codes, the canonical name, Babel's English (CLDR "en") name and a few
  English forms CLDR lacks (`_ENGLISH_ALIASES`): the English table, tried first;
- every territory name of every Babel base locale ("Armenien", "Россия", "ドイツ"): loaded on
  first need only, once per process (~0.6 s), since the English table answers most rows.

It returns the canonical name (the name stored signers already carry), or the text itself when it
is no known country ("Kurdistan", "Scotland"). It raises `RowRejected` when the text can mean
two territories: a spelling that locales give to different territories ("Kongo"), a mixed-case
code that a locale also uses as another territory's name ("Nga": Nigeria's NGA, Vietnamese for
Russia), and "NA" (Namibia's code, written for "not available"). Cells that say there is no
country ("N/A", "-", "none", "unknown") read as what they say: "" (no country known).
"""  # noqa: E501 (the first line names the module whole)

from __future__ import annotations

import functools
import types
import unicodedata
from collections.abc import Iterable, Mapping
from typing import NamedTuple

from babel import Locale, localedata

from delivery.errors import RowRejected

# alpha-2|alpha-3|canonical name;… ISO 3166-1 from Debian iso-codes (its common name where it has
# one: "Iran", "South Korea"), plus Kosovo with CLDR's alpha-3. Stored signers carry these names.
_TABLE = """
AD|AND|Andorra;AE|ARE|United Arab Emirates;AF|AFG|Afghanistan;AG|ATG|Antigua and Barbuda;AI|AIA|Anguilla;
AL|ALB|Albania;AM|ARM|Armenia;AO|AGO|Angola;AQ|ATA|Antarctica;AR|ARG|Argentina;AS|ASM|American Samoa;
AT|AUT|Austria;AU|AUS|Australia;AW|ABW|Aruba;AX|ALA|Åland Islands;AZ|AZE|Azerbaijan;
BA|BIH|Bosnia and Herzegovina;BB|BRB|Barbados;BD|BGD|Bangladesh;BE|BEL|Belgium;BF|BFA|Burkina Faso;
BG|BGR|Bulgaria;BH|BHR|Bahrain;BI|BDI|Burundi;BJ|BEN|Benin;BL|BLM|Saint Barthélemy;BM|BMU|Bermuda;
BN|BRN|Brunei Darussalam;BO|BOL|Bolivia;BQ|BES|Bonaire, Sint Eustatius and Saba;BR|BRA|Brazil;
BS|BHS|Bahamas;BT|BTN|Bhutan;BV|BVT|Bouvet Island;BW|BWA|Botswana;BY|BLR|Belarus;BZ|BLZ|Belize;
CA|CAN|Canada;CC|CCK|Cocos (Keeling) Islands;CD|COD|Congo, The Democratic Republic of the;
CF|CAF|Central African Republic;CG|COG|Congo;CH|CHE|Switzerland;CI|CIV|Côte d'Ivoire;CK|COK|Cook Islands;
CL|CHL|Chile;CM|CMR|Cameroon;CN|CHN|China;CO|COL|Colombia;CR|CRI|Costa Rica;CU|CUB|Cuba;
CV|CPV|Cabo Verde;CW|CUW|Curaçao;CX|CXR|Christmas Island;CY|CYP|Cyprus;CZ|CZE|Czechia;DE|DEU|Germany;
DJ|DJI|Djibouti;DK|DNK|Denmark;DM|DMA|Dominica;DO|DOM|Dominican Republic;DZ|DZA|Algeria;EC|ECU|Ecuador;
EE|EST|Estonia;EG|EGY|Egypt;EH|ESH|Western Sahara;ER|ERI|Eritrea;ES|ESP|Spain;ET|ETH|Ethiopia;
FI|FIN|Finland;FJ|FJI|Fiji;FK|FLK|Falkland Islands (Malvinas);FM|FSM|Micronesia, Federated States of;
FO|FRO|Faroe Islands;FR|FRA|France;GA|GAB|Gabon;GB|GBR|United Kingdom;GD|GRD|Grenada;GE|GEO|Georgia;
GF|GUF|French Guiana;GG|GGY|Guernsey;GH|GHA|Ghana;GI|GIB|Gibraltar;GL|GRL|Greenland;GM|GMB|Gambia;
GN|GIN|Guinea;GP|GLP|Guadeloupe;GQ|GNQ|Equatorial Guinea;GR|GRC|Greece;
GS|SGS|South Georgia and the South Sandwich Islands;GT|GTM|Guatemala;GU|GUM|Guam;GW|GNB|Guinea-Bissau;
GY|GUY|Guyana;HK|HKG|Hong Kong;HM|HMD|Heard Island and McDonald Islands;HN|HND|Honduras;HR|HRV|Croatia;
HT|HTI|Haiti;HU|HUN|Hungary;ID|IDN|Indonesia;IE|IRL|Ireland;IL|ISR|Israel;IM|IMN|Isle of Man;
IN|IND|India;IO|IOT|British Indian Ocean Territory;IQ|IRQ|Iraq;IR|IRN|Iran;IS|ISL|Iceland;IT|ITA|Italy;
JE|JEY|Jersey;JM|JAM|Jamaica;JO|JOR|Jordan;JP|JPN|Japan;KE|KEN|Kenya;KG|KGZ|Kyrgyzstan;KH|KHM|Cambodia;
KI|KIR|Kiribati;KM|COM|Comoros;KN|KNA|Saint Kitts and Nevis;KP|PRK|North Korea;KR|KOR|South Korea;
KW|KWT|Kuwait;KY|CYM|Cayman Islands;KZ|KAZ|Kazakhstan;LA|LAO|Laos;LB|LBN|Lebanon;LC|LCA|Saint Lucia;
LI|LIE|Liechtenstein;LK|LKA|Sri Lanka;LR|LBR|Liberia;LS|LSO|Lesotho;LT|LTU|Lithuania;LU|LUX|Luxembourg;
LV|LVA|Latvia;LY|LBY|Libya;MA|MAR|Morocco;MC|MCO|Monaco;MD|MDA|Moldova;ME|MNE|Montenegro;
MF|MAF|Saint Martin (French part);MG|MDG|Madagascar;MH|MHL|Marshall Islands;MK|MKD|North Macedonia;
ML|MLI|Mali;MM|MMR|Myanmar;MN|MNG|Mongolia;MO|MAC|Macao;MP|MNP|Northern Mariana Islands;
MQ|MTQ|Martinique;MR|MRT|Mauritania;MS|MSR|Montserrat;MT|MLT|Malta;MU|MUS|Mauritius;MV|MDV|Maldives;
MW|MWI|Malawi;MX|MEX|Mexico;MY|MYS|Malaysia;MZ|MOZ|Mozambique;NA|NAM|Namibia;NC|NCL|New Caledonia;
NE|NER|Niger;NF|NFK|Norfolk Island;NG|NGA|Nigeria;NI|NIC|Nicaragua;NL|NLD|Netherlands;NO|NOR|Norway;
NP|NPL|Nepal;NR|NRU|Nauru;NU|NIU|Niue;NZ|NZL|New Zealand;OM|OMN|Oman;PA|PAN|Panama;PE|PER|Peru;
PF|PYF|French Polynesia;PG|PNG|Papua New Guinea;PH|PHL|Philippines;PK|PAK|Pakistan;PL|POL|Poland;
PM|SPM|Saint Pierre and Miquelon;PN|PCN|Pitcairn;PR|PRI|Puerto Rico;PS|PSE|Palestine, State of;
PT|PRT|Portugal;PW|PLW|Palau;PY|PRY|Paraguay;QA|QAT|Qatar;RE|REU|Réunion;RO|ROU|Romania;RS|SRB|Serbia;
RU|RUS|Russian Federation;RW|RWA|Rwanda;SA|SAU|Saudi Arabia;SB|SLB|Solomon Islands;SC|SYC|Seychelles;
SD|SDN|Sudan;SE|SWE|Sweden;SG|SGP|Singapore;SH|SHN|Saint Helena, Ascension and Tristan da Cunha;
SI|SVN|Slovenia;SJ|SJM|Svalbard and Jan Mayen;SK|SVK|Slovakia;SL|SLE|Sierra Leone;SM|SMR|San Marino;
SN|SEN|Senegal;SO|SOM|Somalia;SR|SUR|Suriname;SS|SSD|South Sudan;ST|STP|Sao Tome and Principe;
SV|SLV|El Salvador;SX|SXM|Sint Maarten (Dutch part);SY|SYR|Syria;SZ|SWZ|Eswatini;
TC|TCA|Turks and Caicos Islands;TD|TCD|Chad;TF|ATF|French Southern Territories;TG|TGO|Togo;
TH|THA|Thailand;TJ|TJK|Tajikistan;TK|TKL|Tokelau;TL|TLS|Timor-Leste;TM|TKM|Turkmenistan;TN|TUN|Tunisia;
TO|TON|Tonga;TR|TUR|Türkiye;TT|TTO|Trinidad and Tobago;TV|TUV|Tuvalu;TW|TWN|Taiwan;TZ|TZA|Tanzania;
UA|UKR|Ukraine;UG|UGA|Uganda;UM|UMI|United States Minor Outlying Islands;US|USA|United States;
UY|URY|Uruguay;UZ|UZB|Uzbekistan;VA|VAT|Holy See (Vatican City State);
VC|VCT|Saint Vincent and the Grenadines;VE|VEN|Venezuela;VG|VGB|Virgin Islands, British;
VI|VIR|Virgin Islands, U.S.;VN|VNM|Vietnam;VU|VUT|Vanuatu;WF|WLF|Wallis and Futuna;WS|WSM|Samoa;
XK|XKK|Kosovo;YE|YEM|Yemen;YT|MYT|Mayotte;ZA|ZAF|South Africa;ZM|ZMB|Zambia;ZW|ZWE|Zimbabwe;
"""

# English forms Babel's "en" data lacks. CLDR has several as alt="short"/"variant" names, which
# Babel does not import; a few occur in some minor locale (sn "Turkey", ak "UK"), but an English
# form must neither depend on those nor need every locale loaded. The ISO 3166 names differing from
# the canonical ones ("Korea, Republic of") are what exports from ISO-based tools write.
# "America" is left out: it also names the continent(s), so it is kept as typed.
_ENGLISH_ALIASES: tuple[tuple[str, str], ...] = (
    ("US", "U.S."), ("US", "U.S.A."), ("US", "United States of America"),
    ("GB", "UK"), ("GB", "U.K."), ("GB", "Great Britain"), ("GB", "Britain"),
    ("NL", "Holland"), ("NL", "The Netherlands"), ("AE", "UAE"),
    ("IR", "Persia"), ("MM", "Burma"), ("CI", "Ivory Coast"), ("CI", "Cote d'Ivoire"),
    ("SZ", "Swaziland"), ("MK", "Macedonia"), ("TR", "Turkey"), ("TR", "Turkiye"),
    ("CZ", "Czech Republic"), ("TL", "East Timor"), ("VA", "Vatican"), ("VA", "Holy See"),
    ("CD", "DRC"), ("CD", "DR Congo"), ("CD", "Democratic Republic of the Congo"),
    ("CD", "Congo-Kinshasa"), ("CG", "Republic of the Congo"), ("CG", "Congo-Brazzaville"),
    ("PS", "Palestine"), ("MO", "Macau"), ("KR", "Korea, South"), ("KP", "Korea, North"),
    ("BO", "Bolivia, Plurinational State of"), ("IR", "Iran, Islamic Republic of"),
    ("KR", "Korea, Republic of"), ("KP", "Korea, Democratic People's Republic of"),
    ("LA", "Lao People's Democratic Republic"), ("LA", "Lao PDR"), ("MD", "Moldova, Republic of"),
    ("SY", "Syrian Arab Republic"), ("TW", "Taiwan, Province of China"),
    ("TZ", "Tanzania, United Republic of"), ("VE", "Venezuela, Bolivarian Republic of"),
    ("VN", "Viet Nam"),
)

# Keys of codes that some locale also gives to another territory as its name ("Nga" is Russia in
# Vietnamese): only the upper-case form is read as the code. A test checks this against CLDR.
_CODES_ALSO_NAMES = frozenset({"nga"})

# Cells saying there is no country: no country is known, rather than a country called "N/A".
_NO_COUNTRY = frozenset({"n/a", "n a", "-", "–", "—", "none", "unknown"})
_NOT_AVAILABLE = "na"


def _parse_table(text: str) -> dict[str, tuple[str, str]]:
    rows = (entry.split("|") for entry in text.replace("\n", "").split(";") if entry)
    return {alpha2: (alpha3, name) for alpha2, alpha3, name in rows}


COUNTRY_CODES: Mapping[str, tuple[str, str]] = types.MappingProxyType(_parse_table(_TABLE))


@functools.cache
def _codes_by_name() -> dict[str, str]:
    return {name: alpha2 for alpha2, (_alpha3, name) in COUNTRY_CODES.items()}


def country_code(canonical: str) -> str | None:
    """A canonical name (as canonical_country returns it) → its alpha-2 code; None for text
    that names no ISO country."""
    return _codes_by_name().get(canonical)


def iso_country_names() -> frozenset[str]:
    """Every canonical name `canonical_country` returns for a recognised country."""
    return frozenset(name for _, name in COUNTRY_CODES.values())


def _key(text: str) -> str:
    folded = unicodedata.normalize("NFC", text).casefold().replace(".", " ")
    return " ".join(folded.replace("\u2019", "'").replace("\u02bc", "'").split())


def _spelling_table(spellings: Iterable[tuple[str, str]]) -> dict[str, tuple[str, ...]]:
    """(alpha-2, spelling) pairs → key → the canonical names it can mean (sorted; >1: ambiguous)."""
    names: dict[str, set[str]] = {}
    for alpha2, spelling in spellings:
        if alpha2 in COUNTRY_CODES:  # CLDR's regions and groupings (150, EU, UN, EZ, QO, ZZ…)
            names.setdefault(_key(spelling), set()).add(COUNTRY_CODES[alpha2][1])
    return {key: tuple(sorted(found)) for key, found in names.items()}


def _english_spellings() -> Iterable[tuple[str, str]]:
    for alpha2, (alpha3, name) in COUNTRY_CODES.items():
        yield from ((alpha2, alpha2), (alpha2, alpha3), (alpha2, name))
    yield from Locale("en").territories.items()
    yield from _ENGLISH_ALIASES


@functools.cache
def _english_table() -> dict[str, tuple[str, ...]]:
    return _spelling_table(_english_spellings())


def _base_locales() -> list[str]:
    return [ident for ident in localedata.locale_identifiers() if "_" not in ident]


def _territory_names() -> Iterable[tuple[str, str]]:
    """(alpha-2, name) of every base locale's own CLDR data, one locale at a time: Babel keeps
    every locale it loads, whole, and the 331 of them held 160 MB at once (a 1,000,000-row
    import peaked at 366 MB instead of 200); read and released one by one, 15 MB and 0.2 s."""
    for ident in _base_locales():
        yield from localedata.load(ident, merge_inherited=False).get("territories", {}).items()
        localedata.clear_caches()


@functools.cache
def _all_locales_table() -> dict[str, tuple[str, ...]]:
    return _spelling_table(_territory_names())


class _Verdict(NamedTuple):
    text: str  # the canonical name, "" or the value itself; or the reason of a refusal
    refused: bool = False


def _ambiguous(value: str, names: tuple[str, ...]) -> _Verdict:
    means = ", ".join(names[:-1]) + " or " + names[-1]
    return _Verdict(f"country {value!r} can mean {means}: write its ISO code or its English name",
                    refused=True)


def _verdict_for(value: str, key: str) -> _Verdict:
    if key in _NO_COUNTRY:
        return _Verdict("")
    if key == _NOT_AVAILABLE:
        return _Verdict(f"country {value!r} may be Namibia or 'not available': write Namibia "
                        "(or NAM), or leave the cell empty", refused=True)
    if key in _CODES_ALSO_NAMES and not value.isupper():
        meanings = {*_english_table()[key], *_all_locales_table()[key]}
        return _ambiguous(value, tuple(sorted(meanings)))
    # English first: it settles a spelling some other locale gives to another territory.
    for table in (_english_table, _all_locales_table):
        if names := table().get(key):
            return _Verdict(names[0]) if len(names) == 1 else _ambiguous(value, names)
    return _Verdict(value)


# Once per row of imports of a million rows, with few distinct values: keyed on the value itself,
# so a repeated value costs one dict look-up, and "NGA" and "Nga" keep their separate verdicts.
@functools.lru_cache(maxsize=4096)
def _verdict(value: str) -> _Verdict:
    return _verdict_for(value, _key(value))


def canonical_country(value: str) -> str:
    """A cleaned country text → its canonical English short name, "" for a cell saying there is no
    country ("N/A"), or the text itself when it is no known country; RowRejected when ambiguous."""
    if not value:
        return value
    verdict = _verdict(value)
    if verdict.refused:
        raise RowRejected(verdict.text)
    return verdict.text
