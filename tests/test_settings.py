"""Environment → Settings: every variable read in one module, checked at start, documented, and no
secret in a repr."""

from __future__ import annotations

import ast
import ipaddress
import re
from datetime import timedelta
from pathlib import Path

import pytest

from delivery.errors import ConfigError
from delivery.settings import load_settings
from delivery.web import config as web_config_module

REPO = Path(__file__).resolve().parents[1]
SECRET = "k" * 40


def test_defaults() -> None:
    settings = load_settings({})
    assert (settings.shutdown_deadline, settings.check_every, settings.clock_file, settings.log_level) == (
        30.0, None, None, "INFO")
    assert settings.web.secret_key is None and settings.web.secure_cookies == "auto"
    assert settings.web.trusted_proxies == ()


def test_values_from_the_environment() -> None:
    settings = load_settings({"DELIVERY_SHUTDOWN_DEADLINE": "2.5", "DELIVERY_CHECK_EVERY": "0.5",
                              "DELIVERY_CLOCK_FILE": "/tmp/clock", "DELIVERY_LOG_LEVEL": "debug",
                              "DELIVERY_SECRET_KEY": SECRET, "DELIVERY_SECURE_COOKIES": "always",
                              "DELIVERY_TRUSTED_PROXIES": "10.0.0.0/8, 127.0.0.1"})
    assert settings.shutdown_deadline == 2.5 and settings.check_every == timedelta(seconds=0.5)
    assert settings.clock_file == Path("/tmp/clock") and settings.log_level == "DEBUG"
    assert settings.web.secret_key == SECRET and settings.web.secure_cookies == "always"
    assert settings.web.trusted_proxies == (ipaddress.ip_network("10.0.0.0/8"),
                                            ipaddress.ip_network("127.0.0.1/32"))
    assert SECRET not in repr(settings)


@pytest.mark.parametrize(("text", "expected"), [
    ("2s", timedelta(seconds=2)), ("1m", timedelta(minutes=1)), ("0.5", timedelta(seconds=0.5))])
def test_check_every(text: str, expected: timedelta) -> None:
    assert load_settings({"DELIVERY_CHECK_EVERY": text}).check_every == expected


@pytest.mark.parametrize(("name", "value"), [
    ("DELIVERY_CHECK_EVERY", "soon"), ("DELIVERY_CHECK_EVERY", "-3"), ("DELIVERY_CHECK_EVERY", "0"),
    ("DELIVERY_CHECK_EVERY", "5x"),
    ("DELIVERY_SHUTDOWN_DEADLINE", "0"), ("DELIVERY_SHUTDOWN_DEADLINE", "-1"),
    ("DELIVERY_SHUTDOWN_DEADLINE", "soon"), ("DELIVERY_SHUTDOWN_DEADLINE", "99999"),
    ("DELIVERY_SECRET_KEY", "short"), ("DELIVERY_SECURE_COOKIES", "sometimes"),
    ("DELIVERY_TRUSTED_PROXIES", "proxy.example"), ("DELIVERY_LOG_LEVEL", "LOUD"),
])
def test_a_wrong_value_is_refused_naming_its_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name) as caught:
        load_settings({name: value})
    assert caught.value.key == name


def test_without_a_secret_key_one_random_key_serves_the_process(caplog: pytest.LogCaptureFixture) -> None:
    web_config_module._generated.clear()
    with caplog.at_level("WARNING", logger="delivery.web"):
        first = web_config_module.web_config(load_settings({}).web)
        second = web_config_module.web_config(load_settings({}).web)
    assert first.secret_key == second.secret_key and len(first.secret_key) >= 32
    assert sum("DELIVERY_SECRET_KEY is not set" in r.message for r in caplog.records) == 1
    given = web_config_module.web_config(load_settings({"DELIVERY_SECRET_KEY": SECRET}).web)
    assert given.secret_key == SECRET and SECRET not in repr(given)


def _reads_environment(tree: ast.AST) -> bool:
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv", "environb") and \
                isinstance(node.value, ast.Name) and node.value.id == "os":
            return True
    return False


def test_only_the_settings_module_reads_the_environment() -> None:
    readers = [path.relative_to(REPO).as_posix() for path in sorted((REPO / "delivery").rglob("*.py"))
               if _reads_environment(ast.parse(path.read_text(encoding="utf-8")))]
    assert readers == ["delivery/settings.py"]


def test_every_variable_is_in_the_readmes_table() -> None:
    source = (REPO / "delivery" / "settings.py").read_text(encoding="utf-8")
    read = set(re.findall(r'env(?:\.get\(|\[)"(DELIVERY_[A-Z_]+)"', source))
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    table = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `(DELIVERY_[A-Z_]+)`(?:, `(DELIVERY_[A-Z_]+)`)?", table, re.M))
    names = {name for pair in documented for name in pair if name}
    assert len(read) >= 20 and read == names


def test_the_bounce_mailbox_is_read_over_tls_by_default() -> None:
    imap = load_settings({"DELIVERY_BOUNCE_IMAP_HOST": "imap.example.org",
                          "DELIVERY_BOUNCE_IMAP_USERNAME": "bounces@example.org",
                          "DELIVERY_BOUNCE_IMAP_PASSWORD": "secret-password"}).bounce_imap
    assert imap is not None
    assert (imap.port, imap.security, imap.mailbox, imap.verp) == (993, "tls", "INBOX", False)
    assert "secret-password" not in repr(imap)
    assert load_settings({}).bounce_imap is None


@pytest.mark.parametrize(("extra", "name"), [
    ({"DELIVERY_BOUNCE_IMAP_SECURITY": "none"}, "DELIVERY_BOUNCE_IMAP_SECURITY"),
    ({"DELIVERY_BOUNCE_IMAP_USERNAME": ""}, "DELIVERY_BOUNCE_IMAP_USERNAME"),
    ({"DELIVERY_BOUNCE_IMAP_PORT": "99999"}, "DELIVERY_BOUNCE_IMAP_PORT"),
    ({"DELIVERY_BOUNCE_VERP": "yes"}, "DELIVERY_BOUNCE_VERP"),
])
def test_a_bounce_mailbox_that_would_be_read_in_clear_or_cannot_be_is_refused(
        extra: dict[str, str], name: str) -> None:
    env = {"DELIVERY_BOUNCE_IMAP_HOST": "imap.example.org",
           "DELIVERY_BOUNCE_IMAP_USERNAME": "bounces@example.org", **extra}
    with pytest.raises(ConfigError, match=name):
        load_settings(env)


@pytest.mark.parametrize(("value", "expected"), [
    ("https://petition.example.org/", "https://petition.example.org"),
    ("https://example.org/petition", "https://example.org/petition"),
    ("http://127.0.0.1:8080", "http://127.0.0.1:8080"), ("", None)])
def test_the_public_address_of_download_links(value: str, expected: str | None) -> None:
    assert load_settings({"DELIVERY_PUBLIC_URL": value}).public_url == expected


@pytest.mark.parametrize("value", ["http://petition.example.org", "petition.example.org",
                                   "https://example.org/?x=1", "ftp://example.org"])
def test_a_public_address_that_would_send_links_in_clear_or_is_no_address_is_refused(value: str) -> None:
    with pytest.raises(ConfigError, match="DELIVERY_PUBLIC_URL"):
        load_settings({"DELIVERY_PUBLIC_URL": value})
