"""Settings → the PAdES level to sign at and what it needs (timestamp authority, trust roots);
a certificate chain → its revocation status, fetched online; pyHanko's failures → one-line
SigningErrors, SigningUnavailable when a service did not answer.

B-B is the signature alone; B-T adds an RFC 3161 timestamp of the signature; B-LT adds, in the
PDF's Document Security Store, the certificates and the OCSP responses or CRLs that show the
signing and timestamp certificates valid and not revoked when it was signed; B-LTA adds a document
timestamp over all of it, so that it can still be checked after those certificates expire.
At B-LT and above nothing is signed with a certificate whose revocation status cannot be
established now.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from typing import Any

from pyhanko.keys import load_certs_from_pemder_data
from pyhanko.sign import timestamps
from pyhanko.sign.general import SigningError as PyhankoSigningError
from pyhanko_certvalidator import CertificateValidator, ValidationContext
from pyhanko_certvalidator.errors import (
    ExpiredError,
    InsufficientRevinfoError,
    NotYetValidError,
    PathBuildingError,
    RevokedError,
    ValidationError,
)
from pyhanko_certvalidator.fetchers.aiohttp_fetchers import AIOHttpFetcherBackend
from pyhanko_certvalidator.fetchers.api import OwnedFetcherBackend

from delivery.errors import SigningError, SigningUnavailable
from delivery.settings import SIGNATURE_LEVELS, Settings

NETWORK_TIMEOUT = 20.0  # seconds per request to the timestamp authority, an OCSP responder or CRL
LONG_TERM = ("B-LT", "B-LTA")
MAX_ROOTS_BYTES = 1_000_000


@dataclass(frozen=True)
class SignaturePolicy:
    """What a signature carries beyond B-B. `trust_roots` (asn1crypto certificates) are the
    roots the signing and timestamp certificates must chain to for B-LT and B-LTA."""

    level: str = "B-B"
    timestamp_url: str | None = None
    trust_roots: tuple[Any, ...] = ()

    def __post_init__(self) -> None:
        if self.level not in SIGNATURE_LEVELS:
            raise SigningError(f"signature level {self.level!r} is not one of "
                               f"{', '.join(SIGNATURE_LEVELS)}")
        if self.timestamped and not self.timestamp_url:
            raise SigningError(f"signature level {self.level} needs a timestamp service "
                               "(DELIVERY_TIMESTAMP_URL)")
        if self.long_term and not self.trust_roots:
            raise SigningError(f"signature level {self.level} needs trust roots "
                               "(DELIVERY_TRUST_ROOTS)")

    @property
    def timestamped(self) -> bool:
        return self.level != "B-B"

    @property
    def long_term(self) -> bool:
        return self.level in LONG_TERM

    @property
    def archival(self) -> bool:
        return self.level == "B-LTA"


def signature_policy(settings: Settings) -> SignaturePolicy:
    """The configured level (settings checked the combination); SigningError when the trust roots
    file cannot be read."""
    level = settings.signature_level
    roots = _read_roots(settings.trust_roots) if level in LONG_TERM and settings.trust_roots else ()
    return SignaturePolicy(level=level, timestamp_url=settings.timestamp_url if level != "B-B" else None,
                           trust_roots=roots)


def _read_roots(path: Path) -> tuple[Any, ...]:
    try:
        with path.open("rb") as f:
            data = f.read(MAX_ROOTS_BYTES + 1)
    except OSError as exc:
        raise SigningError(f"cannot read DELIVERY_TRUST_ROOTS {path}: {exc.strerror or exc}") from exc
    try:
        roots = tuple(load_certs_from_pemder_data(data)) if len(data) <= MAX_ROOTS_BYTES else ()
    except ValueError as exc:
        raise SigningError(f"DELIVERY_TRUST_ROOTS {path} is not a PEM or DER certificate file") from exc
    if not roots:
        raise SigningError(f"DELIVERY_TRUST_ROOTS {path} holds no certificate")
    return roots


def timestamper(policy: SignaturePolicy) -> timestamps.HTTPTimeStamper | None:
    if not policy.timestamped:
        return None
    return timestamps.HTTPTimeStamper(policy.timestamp_url, timeout=NETWORK_TIMEOUT)


def validation_context(policy: SignaturePolicy) -> ValidationContext | None:
    """For B-LT and B-LTA: revocation information is required for every certificate below the
    roots and fetched online; the caller closes it (`aclose`) in the event loop that used it."""
    if not policy.long_term:
        return None
    return ValidationContext(
        trust_roots=list(policy.trust_roots), allow_fetching=True, revocation_mode="require",
        fetcher_backend=OwnedFetcherBackend(AIOHttpFetcherBackend(per_request_timeout=NETWORK_TIMEOUT)))


async def check_services(cert: Any, intermediates: list[Any], policy: SignaturePolicy, *,
                         signer: str) -> None:
    """Before anything is rendered or signed: the timestamp authority answers (B-T and above),
    and the signing certificate chains to the trust roots and is not revoked, as its OCSP
    responder or CRL says now, and so is the timestamp authority's (B-LT and above)."""
    stamper = timestamper(policy)
    context = validation_context(policy)
    try:
        if context is not None:
            validator = CertificateValidator(cert, intermediate_certs=intermediates,
                                             validation_context=context)
            try:
                await validator.async_validate_usage(set())  # type: ignore[no-untyped-call]
            except (ValidationError, PathBuildingError) as exc:
                raise _path_problem(exc, f"signing certificate {signer}") from exc
            if stamper is not None:
                async for _ in stamper.validation_paths(context):  # type: ignore[no-untyped-call]
                    pass
        elif stamper is not None:
            await stamper.async_dummy_response("sha256")
    except Exception as exc:
        raise explain(exc, policy, signer=signer) from exc
    finally:
        if context is not None:
            await context.aclose()  # type: ignore[no-untyped-call]


def explain(exc: BaseException, policy: SignaturePolicy, *, signer: str,
            signing: str = "the PDF") -> SigningError:
    """What pyHanko raised while signing at `policy`'s level → one line saying what to do;
    `signer` names the signing certificate, `signing` what was being signed."""
    if isinstance(exc, SigningError):
        return exc
    if isinstance(exc, timestamps.TimestampRequestError):
        cause = f" ({first_line(exc.__cause__)})" if exc.__cause__ else ""
        return SigningUnavailable(f"timestamp service {policy.timestamp_url} did not answer: "
                                  f"{first_line(exc)}{cause}; nothing was signed; retry once it "
                                  "answers")
    # pyHanko wraps a failed validation of the signing certificate, with the failure as cause
    if isinstance(exc, PyhankoSigningError) and isinstance(exc.__cause__, ValidationError
                                                           | PathBuildingError):
        return _path_problem(exc.__cause__, f"signing certificate {signer}")
    if isinstance(exc, ValidationError | PathBuildingError):
        # pyHanko validates the timestamp authority's certificate without wrapping its failures
        return _path_problem(exc, "the timestamp authority's certificate",
                             remedy="use another timestamp service (DELIVERY_TIMESTAMP_URL)")
    where = f" (timestamp service {policy.timestamp_url})" if policy.timestamped else ""
    return SigningError(f"cannot sign {signing}{where}: {first_line(exc)}")


def _path_problem(exc: BaseException, what: str, *,
                  remedy: str = "replace it (DELIVERY_SIGNING_KEY, DELIVERY_SIGNING_CERT)",
                  ) -> SigningError:
    detail = first_line(exc)
    if isinstance(exc, RevokedError):
        at = exc.revocation_dt.astimezone(UTC)
        subject = what if exc.is_ee_cert else f"a CA certificate in the chain of {what}"
        return SigningError(f"{subject} was revoked on {at:%Y-%m-%d %H:%M} UTC "
                            f"({exc.reason.human_friendly}): nothing was signed; {remedy}")
    if isinstance(exc, InsufficientRevinfoError):
        if _all_name_revocation_sources(exc):
            return SigningUnavailable(f"the revocation status of {what} could not be established: "
                                      f"its OCSP responder or CRL server did not answer ({detail}); "
                                      "nothing was signed; retry once it answers")
        return SigningError(f"the revocation status of {what} cannot be established: a certificate "
                            f"of its chain names no OCSP responder or CRL ({detail}); sign at "
                            "DELIVERY_SIGNATURE_LEVEL=B-T or use a certificate whose CA publishes one")
    if isinstance(exc, PathBuildingError):
        return SigningError(f"{what} does not chain to a root in DELIVERY_TRUST_ROOTS ({detail})")
    if isinstance(exc, ExpiredError | NotYetValidError):
        return SigningError(f"{what} is not valid now ({detail})")
    return SigningError(f"{what} cannot be validated ({detail})")


def _all_name_revocation_sources(exc: InsufficientRevinfoError) -> bool:
    """Whether every certificate of the failed path below its root names an OCSP responder or a
    CRL: then the information exists and only fetching it failed."""
    certs = list(exc.current_path.iter_certs(include_root=False))
    return bool(certs) and all(c.ocsp_urls or c.crl_distribution_points for c in certs)


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__
