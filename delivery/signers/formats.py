# ruff: noqa: E501  (the docstring's first line, as the project names this module)
"""Platform export formats (`--format NAME`) → which columns hold which signer fields, and which rows count (pure).

An `ExportFormat` names, for each signer field (delivery.signers.options.FIELDS), the headers a
platform writes for it, in order: the first one a file has is read. `fallbacks` are further
headers read, in order, when that field's cell is empty on a row (Mailchimp's CONFIRM_TIME is
empty for a single opt-in, whose time is in OPTIN_TIME). `timezone` is the zone of the
platform's times written without one, when the platform fixes it (Typeform and Mailchimp write
UTC); `date_order` is the day/month order when the platform's format fixes it (a German or
French spreadsheet writes day first). `exclude` lists the rows that do not count as signatures
(a Typeform partial response, a Pytition signature never confirmed by e-mail): such a row is
left out and counted, neither imported nor rejected.

Header matching (`format_columns`, `match_header`): a header written exactly as the format names
it (after stripping) first, then one equal ignoring case, spaces, `_`, `-` and `.` (as the
generic names are matched in delivery.signers.intake). A header cell is read for one field only.
Question titles a form's organiser wrote ("May we publish your name?") are the organiser's own:
the generic names, the consent question finder and `--map` cover them; the formats add only the
common ones.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from delivery.campaigns.languages import N_
from delivery.signers.dates import DateOrder
from delivery.signers.format_names import FORMAT_NAMES


@dataclass(frozen=True)
class Exclusion:
    column: str                 # header
    values: frozenset[str]      # cell values (compared after strip + casefold) that exclude the row
    reason: str                 # "partial response (not submitted)", "signature not confirmed"

    def excludes(self, value: str) -> bool:
        return value.strip().casefold() in self.values


@dataclass(frozen=True)
class ExportFormat:
    name: str
    title: str                                   # e.g. "Typeform responses (CSV)"
    columns: Mapping[str, tuple[str, ...]]       # field → the platform's header names, first present wins
    # field → headers read, in order, when that field's cell is empty
    fallbacks: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    timezone: str | None = None                  # the zone of the platform's times written without one
    date_order: DateOrder | None = None          # when the platform's format fixes it (German Excel: dmy)
    exclude: tuple[Exclusion, ...] = ()


def _key(header: str) -> str:
    """As delivery.signers.intake._header_key (which imports this module, so not imported)."""
    return " ".join(re.sub(r"[\s_\-.]+", " ", header.casefold()).split())


def match_header(header: Sequence[str], names: Sequence[str]) -> str | None:
    """The header cell of the first of `names` the header has (exact, then loosely), or None."""
    for name in names:
        exact = [cell for cell in header if cell.strip() == name.strip()]
        if exact:
            return exact[0]
        loose = [cell for cell in header if _key(cell) == _key(name)]
        if loose:
            return loose[0]
    return None


def format_columns(fmt: ExportFormat, header: Sequence[str]) -> dict[str, str]:
    """A file's header cells → {field: header cell} for the fields this format finds in it."""
    found: dict[str, str] = {}
    for name, candidates in fmt.columns.items():
        free = [cell for cell in header if cell not in found.values()]
        cell = match_header(free, candidates)
        if cell is not None:
            found[name] = cell
    return found


_YES_NO_FALSE = frozenset({"false", "0", "no"})

# Google Sheets writes the timestamp column and the collected e-mail address in the language of
# the spreadsheet's locale (en, de, fr, es, it, pt, nl, pl, ru).
_GOOGLE_TIMESTAMP = ("Timestamp", "Zeitstempel", "Horodateur", "Marca temporal",
                     "Informazioni cronologiche", "Carimbo de data/hora", "Tijdstempel",
                     "Sygnatura czasowa", "Отметка времени")
_GOOGLE_EMAIL = ("Email Address", "Email address", "E-Mail-Adresse", "Adresse e-mail",
                 "Dirección de correo electrónico", "Indirizzo email", "Endereço de e-mail",
                 "E-mailadres", "Adres e-mail", "Адрес электронной почты")

_FORMATS = (
    # Google Forms responses as the linked Google Sheet downloads them (File → Download → CSV):
    # "Timestamp", "Email Address" (when the form collects addresses), then one column per
    # question titled as the organiser wrote it. Times are in the spreadsheet's zone and in its
    # locale's date format, so neither is fixed here.
    ExportFormat(
        name="google-forms", title=N_("Google Forms responses (Google Sheets CSV)"),
        columns={
            "signed_at": _GOOGLE_TIMESTAMP,
            "email": _GOOGLE_EMAIL,
            "name": ("Name", "Full name", "Your name", "Your full name", "Vor- und Nachname",
                     "Vollständiger Name", "Nom complet", "Nombre completo", "Nome completo",
                     "Имя и фамилия", "ФИО"),
            "first_name": ("First name", "Vorname", "Prénom"),
            "last_name": ("Last name", "Surname", "Nachname"),
            "city": ("City", "Town", "Your city", "Stadt", "Wohnort", "Ort", "Ville", "Ciudad",
                     "Città", "Cidade", "Город"),
            "country": ("Country", "Your country", "Land", "Pays", "País", "Paese", "Страна"),
            "postcode": ("Postcode", "Zip code", "Postal code", "PLZ", "Postleitzahl",
                         "Code postal"),
        }),
    # Typeform results → Download → CSV: "#" (the response id), one column per question (a
    # contact-info block exports "First name", "Last name", "Phone number", "Email", "Company";
    # an address block "City/Town", "Zip/Post code", "Country"…), then "Response Type"
    # (completed|partial), "Start Date (UTC)", "Stage Date (UTC)", "Submit Date (UTC)",
    # "Network ID", "Tags". A partial response was never submitted: not a signature.
    ExportFormat(
        name="typeform", title=N_("Typeform responses (CSV)"),
        columns={
            "row_id": ("#",),
            "signed_at": ("Submit Date (UTC)",),
            "first_name": ("First name",),
            "last_name": ("Last name",),
            "name": ("Name", "Full name", "What's your name?", "What is your name?",
                     "Your name"),
            "email": ("Email", "Email address", "What's your email address?",
                      "What is your email address?"),
            "phone": ("Phone number",),
            "city": ("City/Town", "City", "Town"),
            "country": ("Country",),
            "postcode": ("Zip/Post code", "Zip code", "Postcode"),
        },
        timezone="UTC",
        exclude=(Exclusion("Response Type", frozenset({"partial"}),
                           N_("partial response (not submitted)")),)),
    # Mailchimp audience export (subscribed_members_export_*.csv): "Email Address", the merge
    # fields by label ("First Name", "Last Name", "Address", "Phone Number"…), then MEMBER_RATING,
    # OPTIN_TIME, OPTIN_IP, CONFIRM_TIME, CONFIRM_IP, LATITUDE, LONGITUDE, GMTOFF, DSTOFF,
    # TIMEZONE, CC, REGION, LAST_CHANGED, LEID, EUID, NOTES, TAGS. CC is the ISO country code
    # geolocated at sign-up. Times are "YYYY-MM-DD HH:MM:SS" without a zone, read as UTC (the
    # file does not say; GMTOFF/DSTOFF/TIMEZONE are the subscriber's zone, not the times').
    # No consent to be named: a subscription is not one.
    ExportFormat(
        name="mailchimp", title=N_("Mailchimp audience export (CSV)"),
        columns={
            "email": ("Email Address",),
            "first_name": ("First Name",),
            "last_name": ("Last Name",),
            "phone": ("Phone Number",),
            "country": ("CC",),
            "signed_at": ("CONFIRM_TIME",),
            "row_id": ("LEID",),
        },
        fallbacks={"signed_at": ("OPTIN_TIME",)},
        timezone="UTC"),
    # Action Network report / action download (export-*-csv_report_*.csv): uuid, first_name,
    # last_name, email, zip_code, can2_phone, can2_user_address, can2_user_city,
    # can2_state_abbreviated, can2_county, can2_user_tags, can2_subscription_status,
    # can2_sms_status, can2_subscription_date, then the action's custom fields by key.
    ExportFormat(
        name="action-network", title=N_("Action Network report or action download (CSV)"),
        columns={
            "row_id": ("uuid",),
            "first_name": ("first_name",),
            "last_name": ("last_name",),
            "email": ("email",),
            "postcode": ("zip_code",),
            "phone": ("can2_phone", "Phone Number", "Phone"),
            "city": ("can2_user_city",),
            "country": ("can2_country", "country"),
            "signed_at": ("created_at", "can2_subscription_date"),
        }),
    # NationBuilder people export (nationbuilder-people-export-*.csv): nationbuilder_id,
    # first_name, middle_name, last_name, email (email1…email4), phone_number, mobile_number,
    # primary_address1…3, primary_city, primary_state, primary_zip, primary_country_code,
    # primary_country, created_at, tag_list, then custom fields by slug.
    ExportFormat(
        name="nationbuilder", title=N_("NationBuilder people export (CSV)"),
        columns={
            "row_id": ("nationbuilder_id",),
            "first_name": ("first_name",),
            "last_name": ("last_name",),
            "email": ("email", "email1"),
            "phone": ("phone_number", "mobile_number"),
            "city": ("primary_city",),
            "country": ("primary_country_code", "primary_country"),
            "postcode": ("primary_zip",),
            "signed_at": ("created_at",),
        },
        fallbacks={"email": ("email1", "email2", "email3", "email4"),
                   "phone": ("mobile_number",),
                   "country": ("primary_country",)}),
    # CiviCRM Export Contacts / Export Activities (CiviCRM_Contact_Search.csv): field titles,
    # a location field as "LOCATION-Title" ("Home-City", "Primary-Email", "Home-Phone-Mobile"),
    # "Contact ID" ("Internal Contact ID" before 5.x), "Activity Date" for a petition signature.
    ExportFormat(
        name="civicrm", title=N_("CiviCRM contact or activity export (CSV)"),
        columns={
            "row_id": ("Contact ID", "Internal Contact ID"),
            "first_name": ("First Name",),
            "last_name": ("Last Name",),
            "email": ("Email", "Primary-Email", "Home-Email", "Work-Email"),
            "city": ("City", "Primary-City", "Home-City", "Work-City"),
            "country": ("Country", "Primary-Country", "Home-Country", "Work-Country"),
            "postcode": ("Postal Code", "Primary-Postal Code", "Home-Postal Code",
                         "Work-Postal Code"),
            "phone": ("Phone", "Primary-Phone", "Home-Phone-Phone", "Home-Phone-Mobile",
                      "Home-Phone", "Work-Phone-Phone"),
            "signed_at": ("Activity Date", "Date", "Created Date"),
        }),
    # Pytition's signature download ("Export signatures as CSV"): first_name, last_name,
    # phone, email, subscribed_to_mailinglist, confirmed (Python's True/False). No date and no
    # consent column. subscribed_to_mailinglist is a newsletter choice, NOT consent to be named.
    ExportFormat(
        name="pytition", title=N_("Pytition signatures (CSV)"),
        columns={
            "first_name": ("first_name",),
            "last_name": ("last_name",),
            "phone": ("phone",),
            "email": ("email",),
            "signed_at": ("date",),  # the Signature model's field, should an export add it
        },
        exclude=(Exclusion("confirmed", _YES_NO_FALSE, N_("signature not confirmed by e-mail")),)),
    # A German spreadsheet (Excel, LibreOffice) saved as CSV: ";"-separated, Windows-1252, dates
    # always day first ("04.03.2026"), WAHR/FALSCH for booleans; headers as people write them.
    ExportFormat(
        name="excel-de", title=N_("German spreadsheet saved as CSV (Excel, LibreOffice)"),
        columns={
            "first_name": ("Vorname",),
            "last_name": ("Nachname", "Familienname", "Zuname"),
            "name": ("Vollständiger Name", "Vor- und Nachname"),
            "email": ("E-Mail", "E-Mail-Adresse", "Email", "Mail"),
            "city": ("Ort", "Stadt", "Wohnort"),
            "country": ("Land",),
            "signed_at": ("Datum", "Unterschrieben am", "Unterzeichnet am", "Unterschrift am"),
            "postcode": ("PLZ", "Postleitzahl"),
            "phone": ("Telefon", "Telefonnummer", "Mobil", "Handy"),
            "consent": ("Einwilligung", "Name veröffentlichen", "Veröffentlichung", "Zustimmung"),
        },
        date_order=DateOrder.DMY),
    # A French spreadsheet saved as CSV: ";"-separated, UTF-8 with a BOM ("CSV UTF-8") or
    # Windows-1252, dates day first ("04/03/2026"), Oui/Non; "Nom" is the family name.
    ExportFormat(
        name="excel-fr", title=N_("French spreadsheet saved as CSV (Excel, LibreOffice)"),
        columns={
            "last_name": ("Nom", "Nom de famille"),
            "first_name": ("Prénom",),
            "name": ("Nom complet", "Nom et prénom", "Prénom et nom"),
            "email": ("Adresse e-mail", "E-mail", "Courriel", "Adresse électronique", "Mail"),
            "city": ("Ville", "Commune"),
            "country": ("Pays",),
            "signed_at": ("Date", "Date de signature", "Signé le"),
            "postcode": ("Code postal", "CP"),
            "phone": ("Téléphone", "Tél", "Portable"),
            "consent": ("Consentement", "Publier mon nom", "Accord"),
        },
        date_order=DateOrder.DMY),
)

FORMATS: Mapping[str, ExportFormat] = MappingProxyType({fmt.name: fmt for fmt in _FORMATS})
if tuple(sorted(FORMATS)) != FORMAT_NAMES:
    raise ImportError("delivery.signers.format_names.FORMAT_NAMES must list the formats' names, "
                      f"sorted: {sorted(FORMATS)}")
