"""The web admin in English, Armenian and Russian: Accept-Language → the pages' language, an
organizer's choice (the header's form) → stored on the account and audited, the locale's numbers
and dates, no English left on any page in hy or ru, and the language form in real headless
Chromium without JavaScript. On SQLite and PostgreSQL."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from babel.dates import format_skeleton
from babel.messages.pofile import read_po
from babel.numbers import format_decimal
from babel.support import NullTranslations
from sqlalchemy import Engine, select
from starlette.testclient import TestClient

from delivery.campaigns.config import parse_campaign
from delivery.campaigns.languages import ADMIN, translations
from delivery.mail.outbox import pause_account
from delivery.services.app import App, init
from delivery.services.preview import PreviewResult
from delivery.services.reports import FileReport
from delivery.settings import load_settings
from delivery.signers.formats import FORMATS
from delivery.storage.db import transaction
from delivery.storage.models import AuditRow, UserRow
from delivery.web import create_web_app
from delivery.web.imports import GENERIC_COLUMNS
from tests.support.browser import ARTIFACTS, serving
from tests.support.campaigns import campaign_file
from tests.support.smtpd import SmtpServer
from tests.web.test_import_page import GOOGLE_US, NO_CONSENT, check, confirm_fields
from tests.web.test_web import (
    NOW,
    PASSWORD,
    SLUG,
    add_signers,
    add_user,
    csrf_of,
    held_delivery,
    login,
    make_app,
    web_config,
)

POT = Path(__file__).resolve().parents[2] / "templates" / "locale" / "admin.pot"
OTHER = "second-petition"
TRANSLATED = ("hy", "ru")
# Six more signers: with the fixture's four, the milestone of 10 is passed.
MORE_SIGNERS = [(f"Signer {n}", f"signer{n}@example.net", "Vanadzor", "Armenia") for n in range(6)]
# Proper names on the pages that contain a word which is also a msgid ("Action").
PROPER_NAMES = ("Action Network",)
ACCOUNT = "anna"


@pytest.fixture
def app(engine: Engine, tmp_path: Path) -> App:
    app = make_app(engine, tmp_path)
    add_signers(app)
    add_user(app)
    return app


@pytest.fixture
def client(app: App) -> Iterator[TestClient]:
    with TestClient(create_web_app(app, config=web_config()), client=("127.0.0.1", 40000)) as c:
        yield c


def choose(client: TestClient, code: str, csrf: str, back: str = "/") -> Any:
    """The header's language form, sent."""
    return client.post("/language", data={"csrf": csrf, "language": code, "next": back},
                       follow_redirects=False)


def stored_language(app: App, name: str = "organizer") -> str | None:
    with transaction(app.engine) as session:
        return session.scalar(select(UserRow.language).where(UserRow.name == name))


def language_audit(app: App) -> list[AuditRow]:
    with transaction(app.engine) as session:
        rows = list(session.scalars(select(AuditRow).where(AuditRow.action == "user.language")
                                    .order_by(AuditRow.id)))
        session.expunge_all()
        return rows


def texts(client: TestClient, code: str) -> NullTranslations:
    """The catalog the running admin writes `code` with."""
    catalog: NullTranslations = client.app.state.web.languages[code].texts  # type: ignore[attr-defined]
    return catalog


# --- what a page shows ----------------------------------------------------------------------------

class _Visible(HTMLParser):
    """A page → the lines of text a reader sees (and the texts of its buttons, placeholders and
    labels for assistive technology). Inline elements join their text; any other breaks a line.
    Neither <code> (commands, field names the organizer types) nor what the page marks
    translate="no" (file names, SMTP answers, the audit log's codes) is in the interface's
    language: both are left out."""

    INLINE = frozenset({"a", "abbr", "b", "em", "i", "small", "span", "strong", "time", "label"})
    VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta",
                      "source", "track", "wbr"})
    LEFT_OUT = frozenset({"script", "style", "code"})
    SHOWN_ATTRIBUTES = ("aria-label", "placeholder", "title", "alt")

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.left_out: list[str] = []  # the open elements of a left-out one, it first

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if self.left_out or tag in self.LEFT_OUT or values.get("translate") == "no":
            if not self.left_out:
                self.parts.append("\n")
            if tag not in self.VOID:
                self.left_out.append(tag)
            return
        if tag not in self.INLINE:
            self.parts.append("\n")
        shown = [values.get(name) for name in self.SHOWN_ATTRIBUTES]
        if tag == "input" and values.get("type") in ("submit", "button", "reset"):
            shown.append(values.get("value"))
        self.parts.extend(f"\n{text}\n" for text in shown if text)

    def handle_endtag(self, tag: str) -> None:
        if self.left_out:
            if tag in self.left_out:  # closes it, and any element left open inside it
                while self.left_out.pop() != tag:
                    pass
                if not self.left_out:
                    self.parts.append("\n")
            return
        if tag not in self.INLINE:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.left_out:
            self.parts.append(data)


def visible_lines(html: str) -> list[str]:
    parser = _Visible()
    parser.feed(html)
    parser.close()
    lines = (" ".join(line.split()) for line in "".join(parser.parts).split("\n"))
    return [line for line in lines if line]


@dataclass(frozen=True)
class English:
    """One English text of the catalog that the language translates differently, as a pattern of
    the visible text it makes (tags dropped, each placeholder any text)."""

    text: str
    pattern: re.Pattern[str]


def _pattern(msgid: str) -> re.Pattern[str]:
    plain = " ".join(re.sub(r"<[^>]+>", "", msgid).split())
    pieces = re.split(r"(%\(\w+\)s|%%)", plain)
    regex = "".join(".+?" if p.startswith("%(") else "%" if p == "%%" else re.escape(p) for p in pieces)
    if re.match(r"\w", plain):
        regex = r"(?<!\w)" + regex
    if re.search(r"\w$", plain):
        regex += r"(?!\w)"
    return re.compile(regex)


def english_texts(catalog: NullTranslations) -> list[English]:
    """Every msgid of admin.pot (each plural form too) whose translation in `catalog` differs."""
    with POT.open("rb") as fp:
        template = read_po(fp)
    out: list[English] = []
    for message in template:
        if not message.id:
            continue
        if isinstance(message.id, (list, tuple)):
            singular, plural = message.id[0], message.id[1]
            pairs = [(singular, catalog.ngettext(singular, plural, 1)),
                     (plural, catalog.ngettext(singular, plural, 5))]
        else:
            pairs = [(message.id, catalog.gettext(message.id))]
        out.extend(English(text, _pattern(text)) for text, translated in pairs if translated != text)
    return out


def leftovers(html: str, english: list[English]) -> list[str]:
    """The English texts of the interface still shown on a page that should be translated."""
    text = "\n".join(visible_lines(html))
    for name in (*PROPER_NAMES, GENERIC_COLUMNS):
        text = text.replace(name, "")
    return sorted({e.text for e in english if e.pattern.search(text)})


def test_the_leftover_check_finds_english_and_ignores_tags_and_code() -> None:
    english = [English(t, _pattern(t)) for t in ("Log in", "held", "<strong>%(n)s</strong> signers.",
                                                 "Line %(line)s: %(reason)s")]
    page = ("<h1>Вход</h1><p><strong>4</strong> signers.</p><p>withheld, threshold</p><ul><li>Line 3: "
            "bad</li></ul><code>Log in</code><input type=submit value='Log in'>")
    assert leftovers(page, english) == ["<strong>%(n)s</strong> signers.", "Line %(line)s: %(reason)s",
                                        "Log in"]
    assert leftovers("<p>withheld</p><td>Log</td><td>in</td>", english) == []


# --- Accept-Language ----------------------------------------------------------------------------------

def test_english_without_accept_language(client: TestClient) -> None:
    page = client.get("/login")
    assert '<html lang="en">' in page.text and "<h1>Log in</h1>" in page.text and "Password" in page.text
    # the language form: every language of templates/languages.toml, each in its own name
    options = re.findall(r'<option value="([a-z]+)" lang="\1"(?: selected)?>([^<]+)</option>', page.text)
    assert options == [("en", "English"), ("hy", "Հայերեն"), ("ru", "Русский")]
    assert '<option value="en" lang="en" selected>' in page.text


def test_the_login_page_follows_accept_language(client: TestClient) -> None:
    hy = client.get("/login", headers={"accept-language": "hy-AM,hy;q=0.9,en;q=0.5"})
    assert '<html lang="hy">' in hy.text
    assert "<h1>Մուտք</h1>" in hy.text and "Գաղտնաբառ" in hy.text
    assert "Հաշիվները ստեղծվում են սերվերում" in hy.text
    for english in ("<h1>Log in</h1>", "Password", "Accounts are made on the server", "Change language"):
        assert english not in hy.text
    ru = client.get("/login", headers={"accept-language": "ru-RU,ru;q=0.9"})
    assert '<html lang="ru">' in ru.text
    assert "<h1>Войти</h1>" in ru.text and "Пароль" in ru.text and 'value="Сменить язык"' in ru.text
    for english in ("<h1>Log in</h1>", "Password", "Accounts are made on the server", "Change language"):
        assert english not in ru.text
    # a language the admin is not written in: English
    fr = client.get("/login", headers={"accept-language": "fr-FR,de;q=0.8"})
    assert '<html lang="en">' in fr.text and "Password" in fr.text
    # a failed login answers in the same language
    bad = client.post("/login", headers={"accept-language": "ru"},
                      data={"csrf": csrf_of(ru.text), "name": "organizer", "password": "wrong wrong wrong"})
    assert bad.status_code == 401 and "Неверное имя или пароль." in bad.text and "Wrong name" not in bad.text


def test_a_choice_before_login_lasts_for_the_session_and_stores_nothing(app: App, client: TestClient) -> None:
    page = client.get("/login")
    chosen = choose(client, "hy", csrf_of(page.text), back="/login")
    assert chosen.status_code == 303 and chosen.headers["location"] == "/login"
    assert "<h1>Մուտք</h1>" in client.get("/login", headers={"accept-language": "ru"}).text
    assert stored_language(app) is None and language_audit(app) == []


# --- the organizer's choice, per account ---------------------------------------------------------------

def test_an_organizers_choice_is_stored_audited_and_outlives_the_session(app: App,
                                                                        client: TestClient) -> None:
    csrf = login(client)
    english = {"accept-language": "en-GB,en;q=0.9"}
    assert "<h1>Dashboard</h1>" in client.get(f"/c/{SLUG}/", headers=english).text
    chosen = choose(client, "ru", csrf, back=f"/c/{SLUG}/deliveries")
    assert chosen.status_code == 303 and chosen.headers["location"] == f"/c/{SLUG}/deliveries"
    assert stored_language(app) == "ru"
    [entry] = language_audit(app)
    assert entry.actor == "web:organizer" and entry.subject == "organizer"
    assert '"language": "ru"' in entry.detail and '"previous": null' in entry.detail

    dashboard = client.get(f"/c/{SLUG}/", headers=english).text
    assert '<html lang="ru">' in dashboard and "<h1>Обзор</h1>" in dashboard
    assert "Следующий рубеж: <strong>10</strong>" in dashboard and "Next milestone" not in dashboard
    deliveries = client.get(f"/c/{SLUG}/deliveries", headers=english).text
    assert "<h1>Отправки</h1>" in deliveries and "Отправок пока нет." in deliveries
    assert "No deliveries yet" not in deliveries
    assert '<option value="ru" lang="ru" selected>Русский</option>' in dashboard

    # logged out, the login page stays in it; logged in again, from another browser too, it is back
    assert client.post("/logout", data={"csrf": csrf}, follow_redirects=False).status_code == 303
    assert "<h1>Войти</h1>" in client.get("/login", headers=english).text
    login(client)
    assert "<h1>Обзор</h1>" in client.get(f"/c/{SLUG}/", headers=english).text
    with TestClient(create_web_app(app, config=web_config())) as other:
        login(other)
        page = other.get(f"/c/{SLUG}/signers", headers=english).text
        assert '<html lang="ru">' in page and "<h1>Подписавшие</h1>" in page
    assert len(language_audit(app)) == 1


def test_the_choice_needs_the_csrf_token_and_a_known_language(app: App, client: TestClient) -> None:
    csrf = login(client)
    assert choose(client, "hy", csrf).status_code == 303
    assert stored_language(app) == "hy"
    for data in ({"language": "ru"}, {"language": "ru", "csrf": "forged-token-forged-token-forged"}):
        refused = client.post("/language", data=data, follow_redirects=False)
        assert refused.status_code == 403
        assert "Այս ձևի ժամկետն անցել է" in refused.text  # the refusal is in the page's language
    for code in ("fr", "", "en_GB", "ru" * 20, "../hy"):
        refused = choose(client, code, csrf)
        assert refused.status_code == 400, code
        assert "ընտրեք ցանկից" in refused.text
    assert stored_language(app) == "hy"
    assert [row.detail for row in language_audit(app)] == ['{"language": "hy", "previous": null}']


def test_back_to_english_and_a_foreign_next_is_ignored(app: App, client: TestClient) -> None:
    csrf = login(client)
    choose(client, "ru", csrf)
    back = choose(client, "en", csrf, back="//evil.example/")
    assert back.headers["location"] == "/"
    assert stored_language(app) == "en"
    page = client.get(f"/c/{SLUG}/", headers={"accept-language": "ru"}).text
    assert '<html lang="en">' in page and "<h1>Dashboard</h1>" in page  # the account's choice wins
    assert [r.detail for r in language_audit(app)][-1] == '{"language": "en", "previous": "ru"}'


def test_the_campaign_title_is_the_one_of_the_pages_language(engine: Engine, tmp_path: Path) -> None:
    toml = campaign_file(slug=SLUG, title="Free the test", goal=80000, signing="off", hold="2h",
                         thresholds="[3, 10, 80000]", check_every="5m", second_language="ru")
    toml = toml.replace('title = "Free the test"', 'title = { en = "Free the test", ru = "Свободу тесту" }')
    env = {"DELIVERY_HOME": str(tmp_path), "DELIVERY_VAR_DIR": str(tmp_path / "var"),
           "DELIVERY_OUTBOX_DIR": str(tmp_path / "outbox")}
    app = App(settings=load_settings(env), engine=engine, campaigns={SLUG: parse_campaign(toml, "t.toml")})
    init(app, now=NOW)
    add_user(app)
    with TestClient(create_web_app(app, config=web_config())) as client:
        csrf = login(client)
        assert "Free the test" in client.get(f"/c/{SLUG}/").text
        choose(client, "ru", csrf)
        page = client.get(f"/c/{SLUG}/deliveries").text
        assert "<title>Отправки · Свободу тесту · petition-delivery</title>" in page
        assert '<p class="crumb">Свободу тесту <span class="slug">' in page and "Free the test" not in page
        choose(client, "hy", csrf)  # no Armenian title: the file's own
        assert '<p class="crumb">Free the test <span class="slug">' in client.get(f"/c/{SLUG}/").text


# --- numbers and dates ----------------------------------------------------------------------------------

@pytest.mark.parametrize("code", ["en", "hy", "ru"])
def test_numbers_and_dates_follow_the_locale(app: App, client: TestClient, code: str) -> None:
    csrf = login(client)
    choose(client, code, csrf)
    locale = client.app.state.web.languages[code].language.locale  # type: ignore[attr-defined]
    goal = format_decimal(80000, locale=locale)
    assert goal == {"en": "80,000", "hy": "80\u00a0000", "ru": "80\u00a0000"}[code]
    dashboard = client.get(f"/c/{SLUG}/").text
    assert "<strong>4</strong>" in dashboard and goal in dashboard
    if code != "en":
        assert "80,000" not in dashboard
    assert {"en": "signers of 80,000", "hy": "ստորագրող՝ 80\u00a0000-ից",
            "ru": "подписи из 80\u00a0000"}[code] in dashboard
    audit = client.get(f"/c/{SLUG}/audit").text
    assert format_skeleton("yMMMd", NOW, locale=locale) in audit
    form = client.get(f"/c/{SLUG}/signers/import").text
    assert {"en": "200 MB", "hy": "200 ՄԲ", "ru": "200 МБ"}[code] in form


# --- no English left ---------------------------------------------------------------------------------------

def _fake_previews(client: TestClient, tmp_path: Path, release: threading.Event) -> list[tuple[str, str]]:
    """Preview jobs of the admin's own kind (done, running until `release`, failed on a bug),
    without the build a real one takes: (what, page path)."""
    jobs = client.app.state.web.jobs  # type: ignore[attr-defined]
    result = PreviewResult(folder=str(tmp_path), dossier_id="TEST-PETITION-0001", signer_count=4,
                           files=[FileReport("dossier-en-1.pdf", 1_234_567, "ab" * 32, 12),
                                  FileReport("manifest.json", 912, "cd" * 32, None)])

    def running(job: Any) -> None:
        job.progress(1, 3)
        release.wait(30)

    def failing(job: Any) -> None:
        raise RuntimeError("a bug")

    started = [("preview done", jobs.start("preview", SLUG, "web:organizer", lambda job: result)),
               ("preview running", jobs.start("preview", SLUG, "web:organizer", running)),
               ("preview failed", jobs.start("preview", SLUG, "web:organizer", failing))]
    for what, job in started:
        if what != "preview running":
            job.thread.join(10)
    return [(what, f"/c/{SLUG}/preview/{job.id}") for what, job in started]


def _every_page(client: TestClient, app: App, tmp_path: Path) -> Iterator[tuple[str, Any]]:
    """(what, response) for every page and message of the admin, in the client's language."""
    held = held_delivery(app)
    yield "campaigns", client.get("/")
    yield "dashboard", client.get(f"/c/{SLUG}/")
    yield "deliveries", client.get(f"/c/{SLUG}/deliveries")
    yield "held delivery", client.get(f"/c/{SLUG}/deliveries/{held}")
    csrf = csrf_of(client.get(f"/c/{SLUG}/signers").text)
    withdraw = f"/c/{SLUG}/signers/withdraw"
    yield "withdrawn", client.post(withdraw, data={"csrf": csrf, "email": "ivan@example.net"})
    yield "no such signer", client.post(withdraw, data={"csrf": csrf, "email": "nobody@example.net"})
    yield "signers found", client.get(f"/c/{SLUG}/signers", params={"q": "a"})
    yield "signers not found", client.get(f"/c/{SLUG}/signers", params={"q": "zzz"})
    send, to = f"/c/{SLUG}/send", "prime-minister@example.org"
    yield "send", client.get(send)
    yield "send review", client.post(send, data={"csrf": csrf, "to": to, "step": "review"})
    yield "send to no one", client.post(send, data={"csrf": csrf, "step": "review"})
    yield "send stale", client.post(send, data={"csrf": csrf, "to": to, "step": "confirm", "nonce": "forged"})
    yield "import form", client.get(f"/c/{SLUG}/signers/import")
    yield "import without a file", check(client, csrf, None)
    yield "import spreadsheet", check(client, csrf, b"PK\x03\x04" + b"\0" * 100, name="signers.xlsx")
    yield "import refused", check(client, csrf, NO_CONSENT)
    checked = check(client, csrf, GOOGLE_US, format="google-forms", update="yes")
    yield "import checked", checked
    fields = confirm_fields(checked.text)
    yield "import done", client.post(f"/c/{SLUG}/signers/import/confirm", data=fields)
    yield "import gone", client.post(f"/c/{SLUG}/signers/import/confirm", data=fields)
    release = threading.Event()
    try:
        for what, path in _fake_previews(client, tmp_path, release):
            yield what, client.get(path)
    finally:
        release.set()
    with transaction(app.engine) as session:  # as the outbox does on a refused SMTP login
        pause_account(session, "campaign@example.org", reason="535 5.7.8 authentication failed", now=NOW)
    yield "sending paused", client.get(f"/c/{SLUG}/")
    yield "sending resumed", client.post(f"/c/{SLUG}/smtp/resume",
                                         data={"csrf": csrf, "account": "campaign@example.org"})
    yield "audit", client.get(f"/c/{SLUG}/audit")
    yield "no such delivery", client.get(f"/c/{SLUG}/deliveries/NOPE-1")
    yield "no such campaign", client.get("/c/no-such-campaign/")
    yield "no such page", client.get("/no/such/page")
    yield "expired form", client.post(f"/c/{SLUG}/preview", data={"csrf": "forged"})
    yield "unknown language", choose(client, "fr", csrf)
    # a delivery built and sent (files, messages, SMTP answers), and one cancelled
    released = client.post(f"/c/{SLUG}/deliveries/{held}/release", data={"csrf": csrf},
                           follow_redirects=False)
    yield "released", client.get(released.headers["location"])
    client.app.state.web.jobs.join_all(timeout=180)  # type: ignore[attr-defined]
    yield "sent delivery", client.get(f"/c/{SLUG}/deliveries/{held}")
    add_signers(app, rows=MORE_SIGNERS)
    second = held_delivery(app)
    yield "cancelled", client.post(f"/c/{SLUG}/deliveries/{second}/cancel", data={"csrf": csrf})
    yield "deliveries at the end", client.get(f"/c/{SLUG}/deliveries")
    yield "dashboard at the end", client.get(f"/c/{SLUG}/")


# Texts of the service layer (and the SMTP server) the pages show as they are: they are English
# by design (delivery.errors' messages, the server's answers), not the admin's interface.
SERVICE_TEXTS = (
    # the import's refusal of a file without a consent column (delivery.signers), its options
    # reworded into the form's (translated) field names
    re.compile(r"no column says whether each signer agreed to be named: [^<]*"),
)


@pytest.mark.parametrize("code", TRANSLATED)
def test_no_page_is_left_in_english(engine: Engine, tmp_path: Path, smtp_server: SmtpServer,
                                    code: str) -> None:
    app = make_app(engine, tmp_path, extra_env=smtp_server.env(), slugs=(SLUG, OTHER))
    add_signers(app)
    add_user(app, ACCOUNT)  # not a name that is also a word of the interface ("organizer")
    with TestClient(create_web_app(app, config=web_config()), client=("127.0.0.1", 40000)) as client:
        english = english_texts(texts(client, code))
        anonymous = {"accept-language": code}
        pages: list[tuple[str, Any]] = [("login", client.get("/login", headers=anonymous))]
        pages.append(("wrong password", client.post("/login", headers=anonymous, data={
            "csrf": csrf_of(pages[0][1].text), "name": ACCOUNT, "password": "wrong wrong wrong"})))
        csrf = login(client, ACCOUNT)
        choose(client, code, csrf)
        pages.extend(_every_page(client, app, tmp_path))
        seen, found = set(), {}
        for what, response in pages:
            assert response.status_code < 500, what
            html = response.text
            for service in SERVICE_TEXTS:
                html = service.sub("", html)
            assert f'<html lang="{code}">' in html, what
            if left := leftovers(html, english):
                found[what] = left
            seen.add(response.status_code)
        assert found == {}
        assert {200, 400, 403, 404, 410} <= seen  # pages, refusals, expired forms, errors, gone uploads


TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


def test_every_import_format_title_is_translated() -> None:
    named = {f.title for f in FORMATS.values()} | {e.reason for f in FORMATS.values() for e in f.exclude}
    for code in ("hy", "ru"):
        texts = translations(TEMPLATES, code, ADMIN)
        assert {n for n in named if texts.gettext(n) == n} == set(), code


# --- in a browser -------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_the_language_form_works_without_javascript(engine: Engine, tmp_path: Path, browser: Any) -> None:
    app = make_app(engine, tmp_path)
    add_signers(app)
    add_user(app)
    with serving(app, web_config()) as base:
        context = browser.new_context(viewport={"width": 1280, "height": 900}, java_script_enabled=False,
                                      locale="en-GB")
        page = context.new_page()
        page.goto(f"{base}/login")
        assert page.inner_text("h1") == "Log in"
        page.select_option("#language-choice", label="Русский")
        page.click("form.language input[type=submit]")
        page.wait_for_selector("h1:has-text('Войти')")
        assert page.get_attribute("html", "lang") == "ru" and "/login" in page.url
        page.screenshot(path=str(ARTIFACTS / "language-01-login-ru.png"), full_page=True)
        page.fill("input[name=name]", "organizer")
        page.fill("input[name=password]", PASSWORD)
        page.click("main button[type=submit]")
        page.wait_for_url(f"{base}/c/{SLUG}/")
        main = page.inner_text("main")
        assert "Следующий рубеж: 10" in main and "Next milestone" not in main
        page.select_option("#language-choice", label="Հայերեն")
        page.click("form.language input[type=submit]")
        page.wait_for_selector("h1:has-text('Վահանակ')")
        assert page.url == f"{base}/c/{SLUG}/"
        page.screenshot(path=str(ARTIFACTS / "language-02-dashboard-hy.png"), full_page=True)
        context.close()
    assert stored_language(app) == "hy"
    assert [row.actor for row in language_audit(app)] == ["web:organizer"]
