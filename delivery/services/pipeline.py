"""Delivery + frozen signers → signed bundle files → messages per recipient: the stages, wired.

compose → render/pdf (build) → sign (bundle) → message. Used by the service for real deliveries
and by `preview`, so a preview is exactly what would be sent.
"""

from __future__ import annotations

import asyncio
import functools
import html
import json
import re
import secrets
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from babel.numbers import format_decimal
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from jinja2.sandbox import SandboxedEnvironment
from sqlalchemy import delete
from sqlalchemy.orm import Session

from delivery.artifacts import LETTER, MANIFEST_KINDS, BundleFile
from delivery.bundle.appearance import Appearance
from delivery.bundle.assemble import BundleFacts, assemble_bundle
from delivery.bundle.ltv import SignaturePolicy, signature_policy
from delivery.bundle.sign import SigningIdentity, check_signing_services
from delivery.campaigns.config import Campaign, Recipient
from delivery.campaigns.templates import (
    EMAIL_TEMPLATE,
    letter_overrides,
    letter_template,
    template_loader,
)
from delivery.dossier.render import Texts, load_texts, template_version
from delivery.dossier.stored import Frozen, compose_stored
from delivery.errors import ConfigError, SigningError
from delivery.mail import transport
from delivery.mail.message import (
    Envelope,
    Letter,
    Written,
    build_link_message,
    build_messages,
    messages_needed,
    part_budget,
    sends_link,
)
from delivery.pdf.build import build_dossier_pdfs
from delivery.services import signing_keys
from delivery.services.app import App
from delivery.services.links import link_url, token_hash
from delivery.storage.models import DeliveryFileRow, DeliveryRow

Progress = Callable[[int, int], None]


def signing_identity(app: App, campaign: Campaign, *, now: datetime) -> SigningIdentity | None:
    if campaign.signing == "off":
        return None
    identity = signing_keys.identity(app, now=now)
    if identity is None:
        raise SigningError(f"campaign {campaign.slug} requires signed dossiers but DELIVERY_SIGNING_KEY "
                           "is not set and no certificate was uploaded (set it, upload one on the web "
                           "admin's Signing page, or set signing = \"off\" in the campaign file)")
    return identity


def build_bundle(app: App, campaign: Campaign, signers: Frozen, *, dossier_id: str,
                 created_at: datetime, trigger: str, milestone: int | None,
                 recipients: Sequence[Recipient], now: datetime,
                 progress: Progress | None = None, only: Recipient | None = None,
                 limit: int | None = None) -> list[BundleFile]:
    """The signed bundle of every edition the recipients read, its PDFs cut so that each e-mail
    fits every recipient; `only` (with its `limit`): that recipient's edition alone, cut to fit
    e-mails of `limit` bytes (the dossier still names every recipient as its addressee)."""
    # Load the key first: with signing required and the key unusable, nothing is rendered or sent;
    # nor when its certificate is revoked or a timestamp or revocation service does not answer.
    identity = signing_identity(app, campaign, now=now)
    policy: SignaturePolicy | None = None
    if identity is not None:
        policy = signature_policy(app.settings)
        check_signing_services(identity, policy)
    dossier, read_lines = compose_stored(
        app.engine, campaign, signers, dossier_id=dossier_id, created_at=created_at,
        trigger=trigger, milestone=milestone, addressees=recipients,
        signed=identity is not None, now=now)
    if identity is not None:
        dossier = replace(dossier, verify_url=app.settings.verify_url)
    templates = app.settings.templates_dir
    limits = message_limits(app, recipients) if only is None else {only.email: limit or only.max_message_size}
    editions = _languages(recipients if only is None else [only])
    # a recipient who may get a download link gets the letter and summary alone, signed, in its e-mail
    linked = [] if only is not None else _languages(
        [r for r in recipients if r.delivery == "link"
         or (r.delivery == "auto" and app.settings.public_url is not None)])
    pdfs = build_dossier_pdfs(dossier, templates, languages=editions, letters=linked,
                              cache_dir=app.settings.var_dir / "cache" / "volumes", progress=progress,
                              read_lines=read_lines, part_budget=part_budget(list(limits.values())))
    last_number, last_signed_on = dossier.last_line
    facts = BundleFacts(
        campaign_slug=campaign.slug, campaign_title=campaign.title, dossier_id=dossier_id,
        trigger=trigger, milestone=milestone, signer_count=dossier.signer_count,
        listed_count=dossier.listed_count, last_signer_number=last_number,
        last_signer_signed_on=last_signed_on,
        template_version=template_version(templates, campaign.letter), created_at=created_at)
    return assemble_bundle(pdfs, facts, identity, reason=f"Petition dossier: {campaign.title}",
                           location=campaign.signer_location, policy=policy,
                           signature_texts={lang: signature_text(templates, campaign, lang)
                                            for lang in editions},
                           appearances={lang: signature_appearance(templates, lang)
                                        for lang in editions})


def signature_text(templates_dir: Path, campaign: Campaign, language: str) -> tuple[str, str]:
    """(reason, location) of the signature on `language`'s edition, in that language."""
    own = campaign.text(language)
    texts = load_texts(templates_dir, language)
    # Translators: the reason a PDF reader's signature panel shows for the dossier's signature
    return texts.gettext("Petition dossier: %(title)s", title=own.title), own.location


def signature_appearance(templates_dir: Path, language: str) -> Appearance:
    """The visible signature's words on `language`'s letter page."""
    texts = load_texts(templates_dir, language)
    # Translators: the visible signature on the letter page; the signing time follows on a line
    # of its own
    return Appearance(texts.gettext("Digitally signed by %(signer)s", signer="%(signer)s"))


def message_limits(app: App, recipients: Sequence[Recipient]) -> dict[str, int]:
    """Each recipient's largest e-mail: its max_message_size, or the SMTP server's SIZE when that
    is smaller (asked once per call; unknown when the server cannot be reached now)."""
    smtp = app.settings.smtp
    server = asyncio.run(transport.announced_size(smtp)) if smtp is not None else None
    return {r.email: min(r.max_message_size, server) if server else r.max_message_size
            for r in recipients}


def _languages(recipients: Sequence[Recipient]) -> list[str]:
    return list(dict.fromkeys(r.language for r in recipients))


def build_bundle_for_delivery(app: App, campaign: Campaign, delivery: DeliveryRow, *, now: datetime,
                              progress: Progress | None = None) -> list[BundleFile]:
    emails = json.loads(delivery.recipients)
    check_links(app, [campaign.recipient(e) for e in emails])
    return build_bundle(app, campaign, Frozen.of(delivery), dossier_id=delivery.public_id,
                        created_at=delivery.created_at, trigger=delivery.trigger,
                        milestone=delivery.milestone,
                        recipients=[campaign.recipient(e) for e in emails], now=now, progress=progress)


def check_links(app: App, recipients: Sequence[Recipient]) -> None:
    """Before anything is built: a recipient who takes the dossier as a link needs the address
    recipients reach this service at."""
    for recipient in recipients:
        if recipient.delivery == "link" and app.settings.public_url is None:
            raise ConfigError("environment", "DELIVERY_PUBLIC_URL",
                              f"{recipient.email} takes its dossier as a link (delivery = \"link\"), "
                              "and links need the address recipients reach this service at")


def store_files(session: Session, delivery_id: int, files: Sequence[BundleFile]) -> None:
    session.execute(delete(DeliveryFileRow).where(DeliveryFileRow.delivery_id == delivery_id))
    for f in files:
        session.add(DeliveryFileRow(delivery_id=delivery_id, name=f.name, language=f.language, kind=f.kind,
                                    part=f.part, size=f.size, sha256=f.sha256, pages=f.pages,
                                    content=f.data))


@dataclass(frozen=True)
class LinkGrant:
    """A recipient's download page, made with its e-mail: the token is in the e-mail only."""

    token: str
    expires_at: datetime

    @property
    def token_hash(self) -> str:
        return token_hash(self.token)


def messages_for(app: App, campaign: Campaign, delivery: DeliveryRow, files: Sequence[BundleFile], *,
                 send_at: datetime) -> Iterator[tuple[str, list[Written], LinkGrant | None]]:
    """(recipient, [its e-mail per part], its download page or None) for each recipient
    of the delivery in turn: a million-signer dossier's e-mails are hundreds of MB per recipient,
    so only one recipient's are in memory at a time.

    A recipient whose dossier goes as a link (Recipient.delivery, messages.sends_link) gets one
    e-mail with the letter, the page's address and every file's SHA-256, the manifest attached.
    The Date header is the time the message is due: built once with it, every retry carries
    the same bytes.
    """
    envelope = Envelope(sender=campaign.sender, sender_address=campaign.sender_address,
                        dossier_id=delivery.public_id, created_at=send_at)
    shared = [f for f in files if f.kind in MANIFEST_KINDS]
    recipients = [campaign.recipient(email) for email in json.loads(delivery.recipients)]
    limits = message_limits(app, recipients)
    public_url = app.settings.public_url
    for recipient in recipients:
        pdfs = [f for f in files if f.kind == "pdf" and f.language == recipient.language]
        limit = limits[recipient.email]
        letter_for = functools.partial(
            render_letter, app.settings.templates_dir, campaign, recipient, dossier_id=delivery.public_id,
            signer_count=delivery.signer_count, milestone=delivery.milestone,
            created_at=delivery.created_at, verify_url=app.settings.verify_url)
        if sends_link(recipient, messages_needed(pdfs, shared, limit), link_possible=public_url is not None):
            check_links(app, [recipient])  # refuses a "link" recipient without DELIVERY_PUBLIC_URL
            assert public_url is not None
            grant = LinkGrant(secrets.token_urlsafe(32), send_at + campaign.link_expiry)
            texts = load_texts(app.settings.templates_dir, recipient.language)
            # the letter and summary alone, signed, go in the e-mail itself
            letter_pdf = [f for f in files if f.kind == LETTER and f.language == recipient.language]
            link = {"url": link_url(public_url, grant.token),
                    "expires": texts.date(grant.expires_at.date()),
                    "files": [{"name": f.name, "size": _size(texts, f.size), "sha256": f.sha256}
                              for f in [*letter_pdf, *pdfs, *shared]]}
            message = build_link_message(envelope, recipient, letter_for(link=link), [*letter_pdf, *shared],
                                         limit=limit)
            yield recipient.email, [message], grant
            continue
        parts = build_messages(envelope, recipient, letter_for(), pdfs, shared, limit=limit)
        yield recipient.email, parts, None


def recut_messages(app: App, campaign: Campaign, delivery: DeliveryRow, email: str, *, limit: int,
                   cut: int, now: datetime) -> list[Written]:
    """One recipient's dossier built again, its PDFs cut smaller, as e-mails of at most `limit`
    bytes with the Message-IDs of `cut`; due now. OversizedMessage when even the first cannot fit."""
    recipients = [campaign.recipient(e) for e in json.loads(delivery.recipients)]
    recipient = campaign.recipient(email)
    files = build_bundle(app, campaign, Frozen.of(delivery), dossier_id=delivery.public_id,
                         created_at=delivery.created_at, trigger=delivery.trigger,
                         milestone=delivery.milestone, recipients=recipients, now=now, only=recipient,
                         limit=limit)
    envelope = Envelope(sender=campaign.sender, sender_address=campaign.sender_address,
                        dossier_id=delivery.public_id, created_at=now)
    letter = render_letter(app.settings.templates_dir, campaign, recipient, dossier_id=delivery.public_id,
                           signer_count=delivery.signer_count, milestone=delivery.milestone,
                           created_at=delivery.created_at, verify_url=app.settings.verify_url)
    pdfs = [f for f in files if f.kind == "pdf"]
    return build_messages(envelope, recipient, letter, pdfs, [f for f in files if f.kind in MANIFEST_KINDS],
                          limit=limit, cut=cut)


def _size(texts: Texts, size: int) -> str:
    if size < 1_000_000:
        return format_decimal(max(1, round(size / 1000)), locale=texts.locale) + " kB"
    return format_decimal(round(size / 1_000_000, 1), locale=texts.locale) + " MB"


def render_letter(templates_dir: Path, campaign: Campaign, recipient: Recipient, *, dossier_id: str,
                  signer_count: int, milestone: int | None, created_at: datetime,
                  link: Mapping[str, object] | None = None, verify_url: str | None = None) -> Letter:
    """The e-mail's subject, body and display names in the recipient's language, from
    templates/email/ and the language's catalog.

    The body carries the same letter as the dossier's cover page, turned into plain text.
    """
    texts = load_texts(templates_dir, recipient.language)
    count = texts.num(signer_count)  # "1,200", "1 200"
    own = campaign.text(recipient.language)
    edited = letter_overrides(campaign.letter, campaign.letters)
    html_env = SandboxedEnvironment(loader=template_loader(templates_dir, edited), autoescape=True,
                                    undefined=StrictUndefined)
    letter_html = html_env.get_template(letter_template(campaign.letter, recipient.language)).render(
        count=count, title=own.title)
    text_env = Environment(loader=FileSystemLoader(templates_dir), autoescape=False,  # noqa: S701 - plain text
                           undefined=StrictUndefined, keep_trailing_newline=True,
                           extensions=["jinja2.ext.i18n"])
    text_env.policies["ext.i18n.trimmed"] = True
    text_env.install_gettext_translations(texts.catalog, newstyle=True)  # type: ignore[attr-defined]
    text = text_env.get_template(EMAIL_TEMPLATE).render(
        title=own.title, sender_name=own.sender_name, dossier_id=dossier_id,
        signer_count=signer_count, count=count, milestone=milestone,
        milestone_count=texts.num(milestone) if milestone is not None else "",
        created_at=created_at, letter_text=html_to_text(letter_html), link=link,
        verify_url=verify_url)
    subject, _, body = text.partition("\n")
    return Letter(subject=subject.removeprefix("Subject:").strip(), body=body.lstrip("\n"),
                  sender_name=own.sender_name, recipient_name=recipient.text(recipient.language).name)


def html_to_text(markup: str) -> str:
    """Readable paragraphs from rendered letter HTML."""
    body = re.sub(r"</p>|<br\s*/?>", "\n\n", markup)
    body = html.unescape(re.sub(r"<[^>]+>", "", body))
    paragraphs = [" ".join(p.split()) for p in body.split("\n\n")]
    return "\n\n".join(p for p in paragraphs if p)

