"""Accessibility of every admin page, in real headless Chromium: axe-core (npm, injected into the
page) finds no serious or critical violation; at a phone's width (390×844) nothing is wider than
the screen; keyboard focus is visible. One server and one browser for the module, over a
database seeded so that each page has real content: signers, a held delivery and one sent with a
download link, an import checked with rejected rows, a form re-shown with its errors, the audit
log, a preview, the owner's pages, the first-run setup, the public pages. Each page's full axe
report (every impact) is written to test-artifacts/browser/axe-PAGE.json."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import pytest

from delivery.campaigns.config import parse_campaign
from delivery.runtime.serve import announce_setup
from delivery.services import accounts, deliveries
from delivery.services.app import App, init
from delivery.settings import load_settings
from delivery.storage.db import make_engine
from tests.support.browser import ARTIFACTS, chromium, log_in, serving
from tests.support.smtpd import SmtpServer
from tests.web.test_import_page import FORM, GOOGLE_US, NO_CONSENT
from tests.web.test_web import NOW, PASSWORD, SLUG, add_signers, campaign_toml, held_delivery, web_config

pytestmark = pytest.mark.slow

AXE = Path(__file__).resolve().parents[1] / "support" / "node" / "node_modules" / "axe-core" / "axe.min.js"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
SERIOUS = ("serious", "critical")
PM = "prime-minister@example.org"
OWNER, OWNER_PASSWORD = "anna", "the owner's own long password"
ORGANIZER = "organizer"
OTHER = "second-petition"
# A checked import with rejected rows beside the ones it would import.
WITH_REJECTS = GOOGLE_US + (
    b"3/8/2026 10:00:00,bad@example.org,???,Boston,United States,Yes\r\n"
    b"3/9/2026 10:00:00,,ab12cd34ef56ab12cd34ef56ab12cd34,Austin,United States,Yes\r\n")

RUN_AXE = """async () => {
  const result = await axe.run(document, {resultTypes: ["violations"]});
  const where = (t) => Array.isArray(t) ? t.join(" >>> ") : String(t);
  return result.violations.map((v) => ({id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.map((n) => ({target: n.target.map(where).join(" "),
                                summary: n.failureSummary || ""}))}));
}"""
OVERFLOW = """() => {
  const width = window.innerWidth, scroll = document.documentElement.scrollWidth;
  const wide = [];
  if (scroll > width) {
    for (const el of document.body.querySelectorAll("*")) {
      const box = el.getBoundingClientRect();
      if (box.right > width + 0.5 && !el.closest(".scroll")) {
        const classes = typeof el.className === "string" ? el.className.trim().split(/\\s+/) : [];
        wide.push(el.tagName.toLowerCase() + (el.id ? "#" + el.id : "")
                  + classes.filter(Boolean).map((c) => "." + c).join("")
                  + " (right edge " + Math.round(box.right) + "px)");
      }
    }
  }
  return {width: width, scroll: scroll, wide: wide.slice(0, 12)};
}"""
FOCUS_STYLE = """() => {
  const el = document.activeElement, style = getComputedStyle(el);
  const outlined = style.outlineStyle !== "none" && parseFloat(style.outlineWidth) > 0;
  const what = el.tagName.toLowerCase() + (el.name ? "[name=" + el.name + "]" : "")
               + (el.id ? "#" + el.id : "");
  return {what: what,
          outline: style.outlineStyle + " " + style.outlineWidth, shadow: style.boxShadow,
          visible: outlined || style.boxShadow !== "none"};
}"""


Audit = tuple[list[dict[str, Any]], dict[str, Any]]  # axe's violations, and the page's widths


@dataclass
class Site:
    """The running admin, its browser, and what the seeding made."""
    base: str
    app: App
    browser: Any
    link_url: str = ""
    preview_path: str = ""
    held: str = ""
    sent: str = ""
    eml: bytes = b""
    first_run: dict[tuple[str, bool], Audit] = field(default_factory=dict)
    contexts: dict[tuple[str, bool], Any] = field(default_factory=dict)
    tokens_made: int = 0

    def page(self, role: str, phone: bool) -> Any:
        """A page in the context of `role` ("anonymous", an account's name), logged in once."""
        key = (role, phone)
        if key not in self.contexts:
            self.contexts[key] = new_context(self.browser, phone)
            if role != "anonymous":
                page = self.contexts[key].new_page()
                log_in(page, self.base, role, OWNER_PASSWORD if role == OWNER else PASSWORD)
                assert "/login" not in page.url, f"{role} could not log in"
                page.close()
        context = self.contexts[key]
        return context.pages[0] if context.pages else context.new_page()


def new_context(browser: Any, phone: bool) -> Any:
    # axe is injected as an inline script, which the admin's Content-Security-Policy refuses
    if phone:
        return browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True,
                                   bypass_csp=True)
    return browser.new_context(viewport=DESKTOP, bypass_csp=True)


def violations(page: Any) -> list[dict[str, Any]]:
    page.add_script_tag(path=str(AXE))
    found: list[dict[str, Any]] = page.evaluate(RUN_AXE)
    return found


def overflow(page: Any) -> dict[str, Any]:
    measured: dict[str, Any] = page.evaluate(OVERFLOW)
    return measured


def described(found: list[dict[str, Any]]) -> str:
    lines = []
    for v in found:
        lines.append(f"{v['id']} ({v['impact']}): {v['help']}")
        lines.extend(f"    {n['target']}: {' '.join(n['summary'].split())[:300]}" for n in v["nodes"][:8])
        if len(v["nodes"]) > 8:
            lines.append(f"    … and {len(v['nodes']) - 8} more")
    return "\n".join(lines)


def record(name: str, phone: bool, found: list[dict[str, Any]]) -> None:
    suffix = "-phone" if phone else ""
    (ARTIFACTS / f"axe-{name}{suffix}.json").write_text(json.dumps(found, indent=1, ensure_ascii=False))


# --- the pages, each opened as a user would --------------------------------------------------------

def _goto(path: str) -> Callable[[Site, Any], None]:
    def opened(site: Site, page: Any) -> None:
        page.goto(site.base + path)
    return opened


def _login_refused(site: Site, page: Any) -> None:
    page.goto(f"{site.base}/login")
    page.fill("input[name=name]", "nobody")
    page.fill("input[name=password]", "not the password")
    page.click("main button[type=submit]")
    page.wait_for_selector("main .flash.error")


def _delivery(which: str) -> Callable[[Site, Any], None]:
    def opened(site: Site, page: Any) -> None:
        page.goto(f"{site.base}/c/{SLUG}/deliveries/{getattr(site, which)}")
    return opened


def _import_file(content: bytes, name: str, *, fmt: str = "", wait: str) -> Callable[[Site, Any], None]:
    def opened(site: Site, page: Any) -> None:
        page.goto(site.base + FORM)
        page.set_input_files("#f-file", files=[{"name": name, "mimeType": "text/csv", "buffer": content}])
        if fmt:
            page.select_option("#f-format", fmt)
        page.click("button:has-text('Check the file')")
        page.wait_for_selector(wait)
    return opened


def _send_confirm(site: Site, page: Any) -> None:
    page.goto(f"{site.base}/c/{SLUG}/send")
    page.click("text=Review…")
    page.wait_for_selector("h1:has-text('Confirm sending')")


def _preview(site: Site, page: Any) -> None:
    page.goto(site.base + site.preview_path)
    page.wait_for_selector("text=Nothing was sent.")


def _account_refused(site: Site, page: Any) -> None:
    page.goto(f"{site.base}/accounts")
    page.get_by_label("Name", exact=True).fill("maria")
    page.select_option("#f-role", "organizer")
    page.get_by_label("Their first password").fill(PASSWORD)
    page.get_by_label("Password again").fill(PASSWORD + "!")
    page.click("button:has-text('Make the account')")
    page.wait_for_selector(".field-error")


def _token_made(site: Site, page: Any) -> None:
    site.tokens_made += 1
    page.goto(f"{site.base}/tokens")
    page.get_by_label("Name", exact=True).fill(f"website-{site.tokens_made}")
    page.select_option("#f-campaign", SLUG)
    page.click("button:has-text('Make the token')")
    page.wait_for_selector("#new-token")


def _link(site: Site, page: Any) -> None:
    page.goto(site.link_url)
    page.wait_for_selector("text=Download all files")


def _verified(site: Site, page: Any) -> None:
    page.goto(f"{site.base}/verify")
    page.set_input_files("#verify-file", files=[{"name": "dossier.eml", "mimeType": "message/rfc822",
                                                  "buffer": site.eml}])
    page.click("main button[type=submit]")
    page.wait_for_selector("#verdict")


def _settings_refused(site: Site, page: Any) -> None:
    page.goto(f"{site.base}/c/{SLUG}/settings")
    page.fill("#f-r0-email", "not an address")
    page.fill("#f-timezone", "Asia/Nowhere")
    page.click("button:has-text('Save the settings')")
    page.wait_for_selector(".field-error")


def _letter_problem(site: Site, page: Any) -> None:
    page.goto(f"{site.base}/c/{SLUG}/letter/en")
    page.fill("#f-source", "<p>{{ nothing.here }}</p>")
    page.click("button:has-text('Preview')")
    page.wait_for_selector("#problems li")


def _error_404(site: Site, page: Any) -> None:
    response = page.goto(f"{site.base}/c/no-such-campaign/")
    assert response is not None and response.status == 404


def _error_403(site: Site, page: Any) -> None:
    response = page.goto(f"{site.base}/accounts")
    assert response is not None and response.status == 403


# name → (who opens it, how); None: seen before any account existed (the first run)
PAGES: dict[str, tuple[str, Callable[[Site, Any], None] | None]] = {
    "login-first-run": ("anonymous", None),
    "setup": ("anonymous", None),
    "setup-errors": ("anonymous", None),
    "login": ("anonymous", _goto("/login")),
    "login-refused": ("anonymous", _login_refused),
    "campaigns": (ORGANIZER, _goto("/")),
    "dashboard": (ORGANIZER, _goto(f"/c/{SLUG}/")),
    "deliveries": (ORGANIZER, _goto(f"/c/{SLUG}/deliveries")),
    "delivery-held": (ORGANIZER, _delivery("held")),
    "delivery-sent": (ORGANIZER, _delivery("sent")),
    "signers": (ORGANIZER, _goto(f"/c/{SLUG}/signers?q=Petr")),
    "import": (ORGANIZER, _goto(FORM)),
    "import-refused": (ORGANIZER, _import_file(NO_CONSENT, "paper-forms.csv", wait="#e-consent_missing")),
    "import-checked": (ORGANIZER, _import_file(WITH_REJECTS, "responses.csv", fmt="google-forms",
                                               wait="h1:has-text('Check the import')")),
    "audit": (ORGANIZER, _goto(f"/c/{SLUG}/audit")),
    "preview": (ORGANIZER, _preview),
    "send": (ORGANIZER, _goto(f"/c/{SLUG}/send")),
    "send-confirm": (ORGANIZER, _send_confirm),
    "accounts": (OWNER, _goto("/accounts")),
    "accounts-refused": (OWNER, _account_refused),
    "account": (OWNER, _goto(f"/accounts/{ORGANIZER}")),
    "tokens": (OWNER, _goto("/tokens")),
    "token-made": (OWNER, _token_made),
    "signing": (OWNER, _goto("/signing")),
    "settings": (OWNER, _goto(f"/c/{SLUG}/settings")),
    "settings-refused": (OWNER, _settings_refused),
    "letter": (OWNER, _goto(f"/c/{SLUG}/letter/en")),
    "letter-problem": (OWNER, _letter_problem),
    "verify": ("anonymous", _goto("/verify")),
    "verify-result": ("anonymous", _verified),
    "link": ("anonymous", _link),
    "link-gone": ("anonymous", _goto("/d/not-a-real-token-at-all-0123456789")),
    "error-403": (ORGANIZER, _error_403),
    "error-404": (ORGANIZER, _error_404),
}


# --- the site ----------------------------------------------------------------------------------------

def _first_run(site: Site, setup_link: str) -> None:
    """The pages seen while no account exists, audited now, before the seeding makes accounts."""
    for phone in (False, True):
        context = new_context(site.browser, phone)
        page = context.new_page()
        page.goto(f"{site.base}/login")
        assert "No account exists yet" in page.inner_text("main")
        site.first_run[("login-first-run", phone)] = (violations(page), overflow(page))
        page.goto(setup_link)
        site.first_run[("setup", phone)] = (violations(page), overflow(page))
        page.get_by_label("Name", exact=True).fill("anna")
        page.get_by_label("Password", exact=True).fill(PASSWORD)
        page.get_by_label("Password again").fill(PASSWORD + "!")
        page.click("button:has-text('Create the account and log in')")
        page.wait_for_selector(".field-error")
        site.first_run[("setup-errors", phone)] = (violations(page), overflow(page))
        context.close()


def _seed(site: Site, smtp_server: SmtpServer) -> None:
    app = site.app
    add_signers(app)
    add_signers(app, OTHER)
    accounts.add_user(app, OWNER, OWNER_PASSWORD, now=NOW, actor="cli:tester", role=accounts.OWNER)
    accounts.add_user(app, ORGANIZER, PASSWORD, now=NOW, actor="cli:tester")
    site.held = held_delivery(app)
    ref = deliveries.create_manual(app, app.campaigns[SLUG], now=datetime.now(UTC), actor="test")
    with ThreadPoolExecutor(1) as pool:  # a thread of its own, as `serve` runs it
        assert pool.submit(deliveries.build_and_send, app, ref.id, now=datetime.now(UTC)).result()
    site.sent = ref.public_id
    [received] = [r for r in smtp_server.received if PM in r.rcpt_tos]
    mail = message_from_bytes(received.data, policy=policy.default)
    body = mail.get_body(("plain",))
    assert body is not None
    text = body.get_content()
    match = re.search(re.escape(site.base) + r"/d/[A-Za-z0-9_-]+", text)
    assert match, text
    site.link_url = match.group(0)
    [attached] = [r for r in smtp_server.received if "migration-service@example.org" in r.rcpt_tos]
    site.eml = attached.data

    page = site.page(ORGANIZER, False)
    page.goto(f"{site.base}/c/{SLUG}/")
    page.click("text=Preview the dossier")
    page.wait_for_selector("text=Nothing was sent.", timeout=180_000)
    site.preview_path = page.url.removeprefix(site.base)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    assert AXE.exists(), f"{AXE} is missing: make setup runs npm ci in tests/support/node"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    home = tmp_path_factory.mktemp("accessibility")
    smtp_server = SmtpServer()
    smtp_server.start()
    engine = make_engine(f"sqlite:///{home / 'delivery.sqlite3'}")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        env = {"DELIVERY_HOME": str(home), "DELIVERY_VAR_DIR": str(home / "var"),
               "DELIVERY_OUTBOX_DIR": str(home / "outbox"), "DELIVERY_PUBLIC_URL": f"http://127.0.0.1:{port}",
               **smtp_server.env()}
        toml = campaign_toml().replace(f'email = "{PM}"', f'email = "{PM}"\ndelivery = "link"', 1)
        app = App(settings=load_settings(env), engine=engine,
                  campaigns={SLUG: parse_campaign(toml, f"{SLUG}.toml"),
                             OTHER: parse_campaign(campaign_toml(OTHER, title="A second petition"),
                                                   f"{OTHER}.toml")})
        init(app)
        link = announce_setup(app, sock, out=None)
    assert link is not None
    try:
        with serving(app, web_config(), port=port) as base, chromium() as browser:
            site = Site(base=base, app=app, browser=browser)
            _first_run(site, link)
            _seed(site, smtp_server)
            try:
                yield site
            finally:
                for context in site.contexts.values():
                    context.close()
    finally:
        engine.dispose()
        smtp_server.stop()


def audited(site: Site, name: str, phone: bool) -> Audit:
    role, opener = PAGES[name]
    if opener is None:
        found, measured = site.first_run[(name, phone)]
    else:
        page = site.page(role, phone)
        opener(site, page)
        found, measured = violations(page), overflow(page)
        # what each page looks like, for a person to look at (test-artifacts/browser/page-*.png)
        page.screenshot(path=str(ARTIFACTS / f"page-{name}{'-phone' if phone else ''}.png"), full_page=True)
    record(name, phone, found)
    return found, measured


# --- the tests ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(PAGES))
def test_no_serious_or_critical_violation(site: Site, name: str) -> None:
    found, _ = audited(site, name, phone=False)
    serious = [v for v in found if v["impact"] in SERIOUS]
    assert not serious, f"axe on the {name} page:\n{described(serious)}"


@pytest.mark.parametrize("name", list(PAGES))
def test_fits_a_phone_screen(site: Site, name: str) -> None:
    found, measured = audited(site, name, phone=True)
    serious = [v for v in found if v["impact"] in SERIOUS]
    assert not serious, f"axe on the {name} page at 390×844:\n{described(serious)}"
    assert measured["scroll"] <= measured["width"], (
        f"the {name} page is {measured['scroll']}px wide on a {measured['width']}px screen; wider: "
        + "; ".join(measured["wide"]))


def test_keyboard_focus_is_visible_on_the_login_page(site: Site) -> None:
    page = site.page("anonymous", False)
    page.goto(f"{site.base}/login")
    # start from the name field whether or not autofocus has put the focus there yet
    page.focus("input[name=name]")
    seen: list[dict[str, Any]] = [page.evaluate(FOCUS_STYLE)]
    for _ in range(20):  # Tab from the name field round the page back to it
        page.keyboard.press("Tab")
        focused = page.evaluate(FOCUS_STYLE)
        if focused["what"] == "body":
            continue
        seen.append(focused)
        if focused["what"] == "input[name=name]":
            break
    reached = [f["what"] for f in seen]
    assert "input[name=name]" in reached and "input[name=password]" in reached, reached
    hidden = [f for f in seen if not f["visible"]]
    assert not hidden, f"focus not visible on: {hidden}"
