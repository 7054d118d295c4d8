"""ASGI request → request with a signed-cookie session, client IP and TLS flag; response → with
the session cookie and the security headers.

The session is a JSON dict signed with itsdangerous (not encrypted: it holds only the user name,
the user's session id, the CSRF token and a flash message). Its cookie is HttpOnly, SameSite=Lax,
and Secure whenever the request came over TLS, directly or through a trusted proxy
(X-Forwarded-Proto).

X-Forwarded-For and X-Forwarded-Proto are read here and only here, and only when the socket's peer
is in DELIVERY_TRUSTED_PROXIES: uvicorn's own proxy-header handling is switched off (see
delivery.runtime.serve), since it would believe any loopback peer.
"""

from __future__ import annotations

import ipaddress
import json
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.datastructures import MutableHeaders
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from delivery.web.config import WebConfig

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

COOKIE = "pd_session"
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "object-src 'self'; frame-src 'self'; frame-ancestors 'none'; form-action 'self'; "
       "base-uri 'none'")
SECURITY_HEADERS = {
    "content-security-policy": CSP,
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=()",
    "cross-origin-opener-policy": "same-origin",
}


def _address(text: str) -> IpAddress | None:
    """An address as a peer or an X-Forwarded-For hop gives it ('[v6]' too; an IPv4-mapped IPv6
    address as IPv4); None when it is not one."""
    try:
        address = ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(address: IpAddress | None, config: WebConfig) -> bool:
    return address is not None and any(address in net for net in config.trusted_proxies)


def client_facts(scope: Scope, config: WebConfig) -> tuple[str, bool]:
    """(client IP, came over TLS), believing X-Forwarded-* only from a trusted proxy."""
    conn = HTTPConnection(scope)
    peer = conn.client.host if conn.client else "unknown"
    tls = scope.get("scheme") in ("https", "wss")
    address = _address(peer)
    if address is not None:
        peer = str(address)
    if not _trusted(address, config):
        return peer, tls
    # Every header line, in order: a client's own line comes before the one our proxy adds.
    hops = [h.strip() for line in conn.headers.getlist("x-forwarded-for") for h in line.split(",")]
    # The right-most hop not itself a trusted proxy is the one our proxies saw; one that is not
    # an address (garbage from beyond them) ends the walk at the last proxy.
    for hop in reversed([h for h in hops if h]):
        hop_address = _address(hop)
        if hop_address is None:
            break
        peer = str(hop_address)
        if not _trusted(hop_address, config):
            break
    # The right-most value is the one the nearest (trusted) proxy set.
    protos = [p.strip().lower() for line in conn.headers.getlist("x-forwarded-proto")
              for p in line.split(",") if p.strip()]
    if protos:
        tls = tls or protos[-1] == "https"
    return peer, tls


class WebSecurityMiddleware:
    def __init__(self, app: ASGIApp, config: WebConfig) -> None:
        self.app = app
        self.config = config
        self.serializer = URLSafeTimedSerializer(config.secret_key, salt="delivery.web.session")

    def _load(self, scope: Scope) -> dict[str, Any]:
        raw = HTTPConnection(scope).cookies.get(COOKIE)
        if not raw:
            return {}
        try:
            data = self.serializer.loads(raw, max_age=self.config.session_max_age)
        except (BadSignature, ValueError, json.JSONDecodeError):
            return {}
        return data if isinstance(data, dict) else {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        had_cookie = COOKIE in HTTPConnection(scope).cookies
        session = self._load(scope)
        before = json.dumps(session, sort_keys=True)
        scope["session"] = session
        peer, tls = client_facts(scope, self.config)
        scope["delivery.client_ip"], scope["delivery.tls"] = peer, tls
        secure = self.config.secure_cookies == "always" or (self.config.secure_cookies == "auto" and tls)

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
                if secure:
                    headers.setdefault("strict-transport-security", "max-age=31536000")
                headers.setdefault("cache-control", "no-store")
                current: dict[str, Any] = scope["session"]
                flags = f"; Path=/; HttpOnly; SameSite=Lax{'; Secure' if secure else ''}"
                if current and json.dumps(current, sort_keys=True) != before:
                    value = self.serializer.dumps(current)
                    age = self.config.session_max_age
                    headers.append("set-cookie", f"{COOKIE}={value}{flags}; Max-Age={age}")
                elif not current and had_cookie:
                    headers.append("set-cookie", f"{COOKIE}=; Max-Age=0{flags}")
            await send(message)

        await self.app(scope, receive, send_wrapper)
