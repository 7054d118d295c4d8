"""The database schema (SQLAlchemy 2). Alembic migrations under delivery/storage/migrations create it.

Uniqueness that correctness depends on lives here as constraints, not in application checks:
one signer per campaign and e-mail key, one milestone row per threshold, one outbox message per
(delivery, recipient, part). Any number of processes may race; the database decides.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.associationproxy import AssociationProxy, association_proxy
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL wants BIGINT for big tables.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, on SQLite (naive text) and PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class CampaignRow(Base):
    __tablename__ = "campaigns"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    title: Mapped[str] = mapped_column(String(500))
    goal: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class SignerRow(Base):
    __tablename__ = "signers"
    __table_args__ = (
        UniqueConstraint("campaign_id", "email_key", name="uq_signers_campaign_email_key"),
        # the withdrawals a dossier applies, found without reading every row; and the count of
        # signers by country (`status`) read from the index alone
        Index("ix_signers_campaign_withdrawn_country", "campaign_id", "withdrawn_at", "country"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), index=True)
    # HMAC-SHA-256, under the installation's signer key (delivery.storage.keys), of the SHA-256 of
    # the normalised e-mail (or of name+place when there is none): enough to de-duplicate and to
    # find a withdrawal, never enough to write to anyone, nor, without the key, to confirm a guess.
    email_key: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    city: Mapped[str] = mapped_column(String(100))
    country: Mapped[str] = mapped_column(String(100))
    signed_at: Mapped[datetime] = mapped_column(UtcDateTime())
    consent: Mapped[bool] = mapped_column(Boolean)
    source: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    withdrawn_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class VolumeFactsRow(Base):
    """What a volume of stored signers holds (compose.VolumeFacts as JSON), by the fingerprint
    of its rows (see delivery.dossier.stored): a build reads only the volumes not found here."""

    __tablename__ = "volume_facts"
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64), primary_key=True)
    # The volume's rows: a full volume's bounds never change, so a later build counts the
    # rows up to them instead of reading every id again.
    size: Mapped[int] = mapped_column(Integer)
    number: Mapped[int] = mapped_column(Integer)
    first_id: Mapped[int] = mapped_column(BigInteger)
    last_id: Mapped[int] = mapped_column(BigInteger)
    rows: Mapped[int] = mapped_column(Integer)
    facts: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class DeliveryRow(Base):
    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("campaign_id", "request_key", name="uq_deliveries_campaign_request_key"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), index=True)
    public_id: Mapped[str] = mapped_column(String(40), unique=True)
    trigger: Mapped[str] = mapped_column(String(20))  # milestone | manual
    milestone: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # a DeliveryState; the moves between them are delivery.services.states.TRANSITIONS
    status: Mapped[str] = mapped_column(String(20), index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    created_by: Mapped[str] = mapped_column(String(200))
    hold_until: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    # The frozen signer set: signers with id <= last_signer_id not withdrawn at created_at.
    last_signer_id: Mapped[int] = mapped_column(BigInteger)
    signer_count: Mapped[int] = mapped_column(Integer)
    recipients: Mapped[str] = mapped_column(Text)  # JSON list of e-mail addresses
    lease_owner: Mapped[str | None] = mapped_column(String(100), nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    built_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    # The key of the manual send request that made it: a replay finds this delivery again.
    request_key: Mapped[str | None] = mapped_column(String(64), nullable=True)


class MilestoneRow(Base):
    __tablename__ = "milestones"
    __table_args__ = (UniqueConstraint("campaign_id", "threshold", name="uq_milestones_campaign_threshold"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"))
    threshold: Mapped[int] = mapped_column(Integer)
    reached_at: Mapped[datetime] = mapped_column(UtcDateTime())
    signer_count: Mapped[int] = mapped_column(Integer)
    delivery_id: Mapped[int | None] = mapped_column(ForeignKey("deliveries.id"), nullable=True)


class DeliveryFileRow(Base):
    """A file of a delivery's bundle, stored once: every retry sends exactly these bytes."""

    __tablename__ = "delivery_files"
    __table_args__ = (UniqueConstraint("delivery_id", "name", name="uq_delivery_files_delivery_name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("deliveries.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    language: Mapped[str] = mapped_column(String(10))
    kind: Mapped[str] = mapped_column(String(20))  # pdf | manifest | manifest-signature
    part: Mapped[int] = mapped_column(Integer)
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    pages: Mapped[int | None] = mapped_column(Integer, nullable=True)
    content: Mapped[bytes] = mapped_column(LargeBinary)


class MessageBodyRow(Base):
    """An outbox message's stored bytes (MessageRow.content): the e-mail as it goes over the
    wire, except the bodies of the attachments that are files of its delivery (`attachments`,
    JSON: [place among the attachments, file name, SHA-256] each). Those stand in `content` as
    one base64 line, and the files' stored bytes go in their places when the message is sent
    (delivery.mail.outbox.message_content)."""

    __tablename__ = "message_bodies"
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"),
                                            primary_key=True)
    content: Mapped[bytes] = mapped_column(LargeBinary)
    attachments: Mapped[str | None] = mapped_column(Text, nullable=True)


class MessageRow(Base):
    """The outbox: one recipient, one part. States are in delivery.mail.outbox.TRANSITIONS."""

    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("delivery_id", "recipient", "cut", "part",
                         name="uq_messages_delivery_recipient_cut_part"),
        Index("ix_messages_due", "status", "next_attempt_at"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("deliveries.id"), index=True)
    recipient: Mapped[str] = mapped_column(String(320))
    kind: Mapped[str] = mapped_column(String(20))  # dossier | alert
    part: Mapped[int] = mapped_column(Integer)
    parts: Mapped[int] = mapped_column(Integer)
    # 0: the e-mails as first built; 1: the recipient's dossier cut again in smaller e-mails after
    # a part was refused as too large (delivery.mail.outbox)
    cut: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    status: Mapped[str] = mapped_column(String(20))
    message_id: Mapped[str] = mapped_column(String(250), unique=True)
    # The e-mail's bytes live in a table of their own: SQLite writes a whole row again on every
    # update, and a message's row is updated at each claim and outcome. With the bytes in this
    # row, writing 22 e-mails of 7 MB (a million-signer delivery) to the outbox folder took
    # 10.1–13.9 s, each claim and outcome writing its 7 MB again; with them apart, 1.4–2.0 s.
    body: Mapped[MessageBodyRow] = relationship(cascade="all, delete-orphan", passive_deletes=True)
    content: AssociationProxy[bytes] = association_proxy(
        "body", "content", creator=lambda content: MessageBodyRow(content=content))
    size: Mapped[int] = mapped_column(Integer)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime())
    lease_owner: Mapped[str | None] = mapped_column(String(100), nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    last_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_answer: Mapped[str | None] = mapped_column(Text, nullable=True)
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    # Attempts that started sending and never recorded an outcome (a crash between the
    # server's answer and our commit): the resend carries the same bytes and Message-ID.
    crash_resends: Mapped[int] = mapped_column(Integer, default=0)
    # When an organizer retries a failed message, its retry window starts again from here.
    retry_from: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    # What the last bounce for it said (delivery.mail.bounces): when, the RFC 3463 status and the
    # server's words; a "delayed" report leaves the message sent and is shown until a later one.
    bounced_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    bounce_kind: Mapped[str | None] = mapped_column(String(10), nullable=True)  # failed | delayed
    bounce_status: Mapped[str | None] = mapped_column(String(20), nullable=True)
    bounce_diagnostic: Mapped[str | None] = mapped_column(Text, nullable=True)


class BounceRow(Base):
    """A bounce read from the sender's mailbox, once: its fingerprint is unique, so a report
    read again (a second poll, a copy, another instance) changes nothing. Only what
    delivery.mail.bounces extracts is kept, never the mail, which may return a whole dossier."""

    __tablename__ = "bounces"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64), unique=True)
    read_at: Mapped[datetime] = mapped_column(UtcDateTime())
    mailbox: Mapped[str] = mapped_column(String(400))
    uid: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(10))  # failed | delayed
    # the outbox message it is about; None: it names none of ours (it is counted, nothing changes)
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"), nullable=True, index=True)
    status: Mapped[str | None] = mapped_column(String(20), nullable=True)
    diagnostic: Mapped[str] = mapped_column(Text)


class MailboxCursorRow(Base):
    """Where reading a mailbox stopped: its folder's UIDVALIDITY and the last UID read."""

    __tablename__ = "mailbox_cursors"
    account: Mapped[str] = mapped_column(String(400), primary_key=True)
    uidvalidity: Mapped[int] = mapped_column(BigInteger)
    last_uid: Mapped[int] = mapped_column(BigInteger)
    read_at: Mapped[datetime] = mapped_column(UtcDateTime())


class LinkRow(Base):
    """A recipient's download page for one delivery. Only the SHA-256 of its token is kept: the
    token itself is in the e-mail alone, so the database cannot give anyone a working link."""

    __tablename__ = "delivery_links"
    __table_args__ = (
        UniqueConstraint("delivery_id", "recipient", name="uq_delivery_links_delivery_recipient"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("deliveries.id"), index=True)
    recipient: Mapped[str] = mapped_column(String(320))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    # When the organizers were reminded that nothing was downloaded or confirmed (once).
    chased_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class DownloadRow(Base):
    """One download through a link: when, which file (or the ZIP), the browser's name for
    itself. No address is kept."""

    __tablename__ = "link_downloads"
    __table_args__ = (Index("ix_link_downloads_link_at", "link_id", "at"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    link_id: Mapped[int] = mapped_column(ForeignKey("delivery_links.id"))
    at: Mapped[datetime] = mapped_column(UtcDateTime())
    file: Mapped[str] = mapped_column(String(200))
    user_agent: Mapped[str] = mapped_column(String(300))


class SmtpPauseRow(Base):
    """An SMTP account that refused our login: nothing is sent through it until cleared."""

    __tablename__ = "smtp_pauses"
    account: Mapped[str] = mapped_column(String(400), primary_key=True)
    since: Mapped[datetime] = mapped_column(UtcDateTime())
    reason: Mapped[str] = mapped_column(Text)


class AuditRow(Base):
    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(50))
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id"), nullable=True)
    subject: Mapped[str] = mapped_column(String(200))
    detail: Mapped[str] = mapped_column(Text)


class UserRow(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    password_hash: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    # Every session cookie of this user carries it; None: no session is valid. Made at the first
    # login, set to None at logout and at a password change, so that every cookie made before
    # stops working; a user removed and made again starts with None, so old cookies never fit.
    session_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # The web admin's language this organizer chose (a code of templates/languages.toml); None:
    # none chosen, the browser's Accept-Language decides.
    language: Mapped[str | None] = mapped_column(String(16), nullable=True)
    # "owner" (manages accounts and API tokens) or "organizer" (previews, sends, imports).
    role: Mapped[str] = mapped_column(String(16))


class LoginAttemptRow(Base):
    """A password check not known to have succeeded (delivery.services.accounts' login limits):
    written before the check, removed when that name logs in from that address, pruned after a day."""

    __tablename__ = "login_attempts"
    __table_args__ = (Index("ix_login_attempts_address_at", "address", "at"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    # The client's address (an IPv6 one as its /64 network) and the name tried, case-folded.
    address: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(100))


class ApiTokenRow(Base):
    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class SetupTokenRow(Base):
    """A first-run setup link printed by `serve` while no account exists: only its SHA-256 is
    kept; every row is deleted when the first account is made."""

    __tablename__ = "setup_tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())


class SendRequestRow(Base):
    """A manual send waiting for a second account's approval (a campaign's
    require_second_approval); its request_key becomes the delivery's once approved."""

    __tablename__ = "send_requests"
    __table_args__ = (
        UniqueConstraint("campaign_id", "request_key", name="uq_send_requests_campaign_request_key"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"))
    request_key: Mapped[str] = mapped_column(String(64))
    recipients: Mapped[str] = mapped_column(Text)  # JSON list of the addresses confirmed
    requested_by: Mapped[str] = mapped_column(String(100))
    requested_at: Mapped[datetime] = mapped_column(UtcDateTime())
    status: Mapped[str] = mapped_column(String(16))  # "pending", "approved" or "cancelled"
    decided_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class SigningIdentityRow(Base):
    """A signing key and certificate uploaded in the web admin (delivery.services.signing_keys):
    the key (PKCS#8 DER) and the certificates (PEM) sealed with AES-GCM under a key derived from
    DELIVERY_SECRET_KEY; the certificate's public facts in clear. An upload replaces the row."""

    __tablename__ = "signing_identities"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subject: Mapped[str] = mapped_column(Text)
    issuer: Mapped[str] = mapped_column(Text)
    not_before: Mapped[datetime] = mapped_column(UtcDateTime())
    not_after: Mapped[datetime] = mapped_column(UtcDateTime())
    fingerprint: Mapped[str] = mapped_column(String(95))  # SHA-256 of the certificate, AA:BB:…
    sealed_key: Mapped[bytes] = mapped_column(LargeBinary)
    sealed_certs: Mapped[bytes] = mapped_column(LargeBinary)
    uploaded_at: Mapped[datetime] = mapped_column(UtcDateTime())
    uploaded_by: Mapped[str] = mapped_column(String(200))


class CampaignSettingsRow(Base):
    """One version of a campaign's settings, as the TOML text of its campaign file; the newest
    version is in force (delivery.services.campaign_settings). Made from the file by `init`
    (origin "file", with the file's SHA-256) or by an owner in the web admin ("admin",
    "restore")."""

    __tablename__ = "campaign_settings"
    __table_args__ = (
        UniqueConstraint("campaign_id", "version", name="uq_campaign_settings_campaign_version"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"))
    version: Mapped[int] = mapped_column(Integer)
    document: Mapped[str] = mapped_column(Text)
    origin: Mapped[str] = mapped_column(String(16))  # "file", "admin" or "restore"
    file_digest: Mapped[str | None] = mapped_column(String(64), nullable=True)
    changes: Mapped[str] = mapped_column(Text)  # JSON list of the keys changed from the version before
    actor: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class LetterVersionRow(Base):
    """One version of a campaign's cover letter in one language (a Jinja2 template's source),
    saved in the web admin; the newest is used in place of the file under templates/."""

    __tablename__ = "letter_versions"
    __table_args__ = (
        UniqueConstraint("campaign_id", "language", "version",
                         name="uq_letter_versions_campaign_language_version"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"))
    language: Mapped[str] = mapped_column(String(16))
    version: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(Text)
    origin: Mapped[str] = mapped_column(String(16))  # "admin" or "restore"
    actor: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
