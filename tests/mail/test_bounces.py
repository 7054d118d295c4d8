"""Real bounces from many mail servers → what read_bounce makes of them."""

from __future__ import annotations

from pathlib import Path

import pytest

from delivery.mail.bounces import DIAGNOSTIC_LIMIT, BounceKind, read_bounce

SAMPLES = Path(__file__).parent / "samples" / "bounces"

# sample: (kind, the address it reports, status, the original's Message-ID it quotes or None)
EXPECTED = {
    "exim_01": ("failed", "userx@its.example.nl", "5.1.1", "<19990920022322.A19735@stereo.rotzorg.org>"),
    "dsn_11": ("failed", "joem@example.com", "5.1.1",
               "<mailman.0.1035637201.19036.mailman-developers@python.org>"),
    "dsn_10": ("failed", "anne.person@dom.ain", "5.0.0", "<200210211625.12753.b.a.dude@example.com>"),
    "yahoo_13": ("failed", "bogus-address@example.net", "5.1.1",
                 "<130907fb-848c-d154-8e59-ed1e08319fcf@yahoo.com>"),
    "postfix_02": ("failed", "yyyyy@digicool.com", None, "<14915.64162.965657.699956@anthem.concentric.net>"),
    "groupwise_01": ("failed", "userx@example.edu", None, "<20010720085308.H17468@magic.example.org>"),
    "postfix_01": ("failed", "xxxxx@local.ie", "5.1.1", None),
    "qmail_03": ("failed", "userx@example.jp", "5.1.1", None),
    "microsoft_01": ("failed", "userx@example.com", None, None),
    "simple_01": ("failed", "bbbsss@example.com", None, None),
    "dsn_06": ("delayed", "userx@example.com", "4.4.0", "<j4d77kvs79.fsf@informatik.hu-berlin.de>"),
    "dsn_05": ("delayed", "userx@example.cz", "4.4.1", None),
}


def sample(name: str) -> bytes:
    return (SAMPLES / f"{name}.eml").read_bytes()


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_servers_bounce_is_read_for_its_kind_address_status_and_original(name: str) -> None:
    kind, address, status, original = EXPECTED[name]
    bounce = read_bounce(sample(name))
    assert bounce is not None
    assert bounce.kind is BounceKind(kind)
    assert address in bounce.addresses
    assert bounce.status == status
    if original is None:
        assert bounce.message_ids == ()
    else:
        assert bounce.message_ids[0] == original
    assert bounce.diagnostic and "\n" not in bounce.diagnostic and len(bounce.diagnostic) <= DIAGNOSTIC_LIMIT


@pytest.mark.parametrize("name", ["dumbass_01", "bounce_01"])
def test_mails_that_report_no_failed_delivery_are_not_bounces(name: str) -> None:
    assert read_bounce(sample(name)) is None


def test_a_plain_reply_is_not_a_bounce() -> None:
    reply = (b"From: office@example.org\r\nTo: campaign@example.org\r\nSubject: Re: Dossier\r\n"
             b"Message-ID: <reply-1@example.org>\r\nIn-Reply-To: <d-1.abc.1@example.org>\r\n\r\n"
             b"Thank you, received.\r\n")
    assert read_bounce(reply) is None


def test_the_diagnostic_is_the_servers_words() -> None:
    bounce = read_bounce(sample("dsn_10"))
    assert bounce is not None
    assert bounce.diagnostic.startswith("host mx.dom.ain[192.168.1.100] said: 550")
    exim = read_bounce(sample("exim_01"))
    assert exim is not None and "unknown or illegal user" in exim.diagnostic


def test_the_reports_own_message_id_is_never_taken_for_the_original() -> None:
    raw = sample("exim_01")
    bounce = read_bounce(raw)
    assert bounce is not None
    assert "<E11SrFM-00058o-00@stereo.rotzorg.org>" in raw.decode()  # the report's own
    assert "<E11SrFM-00058o-00@stereo.rotzorg.org>" not in bounce.message_ids


def test_the_same_report_read_twice_or_copied_has_one_fingerprint() -> None:
    raw = sample("dsn_11")
    copy = b"Delivered-To: archive@example.org\r\n" + raw
    first, again, copied = read_bounce(raw), read_bounce(raw), read_bounce(copy)
    assert first is not None and again is not None and copied is not None
    assert first.fingerprint == again.fingerprint == copied.fingerprint
    other = read_bounce(sample("dsn_10"))
    assert other is not None and other.fingerprint != first.fingerprint


def test_a_report_without_a_message_id_is_fingerprinted_by_its_bytes() -> None:
    raw = b"\r\n".join(line for line in sample("postfix_01").split(b"\n")
                       if not line.lower().startswith(b"message-id:"))
    bounce, changed = read_bounce(raw), read_bounce(raw.replace(b"User unknown", b"No such user"))
    assert bounce is not None and changed is not None
    assert bounce.fingerprint != changed.fingerprint


def test_a_long_diagnostic_is_cut_to_one_line() -> None:
    raw = sample("postfix_01").replace(b"User unknown", b"User unknown " + b"x" * 1000)
    bounce = read_bounce(raw)
    assert bounce is not None
    assert len(bounce.diagnostic) == DIAGNOSTIC_LIMIT and bounce.diagnostic.endswith("…")


def test_a_report_delivered_to_a_verp_return_path_names_its_row() -> None:
    from delivery.mail.message import return_check, return_path

    address = return_path("campaign@example.org", 4217, "<SM-1.ab12.1@example.org>")
    assert address == f"campaign+b-4217-{return_check('<SM-1.ab12.1@example.org>')}@example.org"
    raw = f"Delivered-To: {address}\r\n".encode() + sample("dsn_11")
    bounce = read_bounce(raw)
    assert bounce is not None and bounce.return_tags == ((4217, return_check("<SM-1.ab12.1@example.org>")),)
    plain = read_bounce(sample("dsn_11"))
    assert plain is not None and plain.return_tags == ()
