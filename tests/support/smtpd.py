"""A real SMTP server on loopback (aiosmtpd) that records what it accepts."""

from __future__ import annotations

import email
import email.policy
import socket
import threading
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes

    @property
    def message(self) -> EmailMessage:
        msg = email.message_from_bytes(self.data, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        return msg


@dataclass
class RecordingHandler:
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        data = envelope.original_content or b""
        if isinstance(data, str):
            data = data.encode()
        with self.lock:
            self.received.append(Received(str(envelope.mail_from), list(envelope.rcpt_tos), data))
        return "250 2.0.0 Ok: queued"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class SmtpServer:
    def __init__(self, handler: Any | None = None, **controller_kwargs: Any) -> None:
        self.handler = handler or RecordingHandler()
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=free_port(),
                                     **controller_kwargs)

    def start(self) -> None:
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()

    @property
    def port(self) -> int:
        return int(self.controller.port)

    @property
    def received(self) -> list[Received]:
        return list(self.handler.received)

    def env(self) -> dict[str, str]:
        """The environment that points petition-delivery at this server."""
        return {"DELIVERY_SMTP_HOST": "127.0.0.1", "DELIVERY_SMTP_PORT": str(self.port),
                "DELIVERY_SMTP_SECURITY": "none"}
