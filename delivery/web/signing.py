"""An owner's upload of the signing certificate (a PKCS#12 file, or a key and its certificate,
with its passphrase) → the stored signing identity, through delivery.services.signing_keys
(audited "signing.upload" with actor "web:NAME"); the current certificate → the Signing page.

GET  /signing  the certificate dossiers are signed with (subject, issuer, validity, fingerprint,
               from the DELIVERY_SIGNING_KEY files or uploaded by whom and when) and the forms
POST /signing  one of the two forms (multipart, at most UPLOAD_LIMIT_MB in all)

The passphrase and the key are never logged, never put back into the page and never shown
again; a refusal is shown beside the field at fault. Organizers get a 403 page here.
"""

from __future__ import annotations

from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from delivery.campaigns.languages import N_
from delivery.services import signing_keys
from delivery.web.accounts import owner_required
from delivery.web.common import (
    EXPIRED,
    MAX_FORM_FIELDS,
    actor,
    blocking,
    checked_form,
    error_page,
    flash,
    render,
    state,
    translator,
)

PATH = "/signing"
UPLOAD_LIMIT_MB = 1
_FILE_LIMIT = UPLOAD_LIMIT_MB * 1024 * 1024  # bytes of all files together
_TEXT_LIMIT = 4096  # bytes of one text field (the passphrase)
TOO_LARGE = N_("The files are larger than %(n)s MB in all: a certificate and its key take a few "
               "kilobytes. Choose the certificate's files.")
KINDS = ("pkcs12", "pem")
# Each form's fields: the piece of material a refusal names → the field it is shown beside.
FIELDS = {"pkcs12": {"pkcs12": "pkcs12", "key": "pkcs12", "cert": "pkcs12", "passphrase": "p12_passphrase"},
          "pem": {"pkcs12": "key", "key": "key", "cert": "cert", "passphrase": "key_passphrase"}}
CHOOSE_PKCS12 = N_("Choose the .p12 or .pfx file.")
CHOOSE_KEY = N_("Choose the private key's file.")
CHOOSE_CERT = N_("Choose the certificate's file.")
CHOOSE = {"pkcs12": CHOOSE_PKCS12, "key": CHOOSE_KEY, "cert": CHOOSE_CERT}
REFUSED = N_("This cannot be used: %(reason)s.")


def body_limit(path: str) -> int | None:
    """The largest request body for this path when it takes an upload (FormSizeLimit asks)."""
    return _FILE_LIMIT + 64 * 1024 if path == PATH else None


def _labels(request: Request) -> dict[str, str]:
    tr = translator(request)
    return {"pkcs12": tr.gettext("PKCS#12 file (.p12, .pfx)"), "p12_passphrase": tr.gettext("Passphrase"),
            "key": tr.gettext("Private key (PEM or DER)"), "cert": tr.gettext("Certificate (PEM or DER)"),
            "key_passphrase": tr.gettext("Passphrase of the key")}


async def _page(request: Request, *, status_code: int = 200, errors: dict[str, str] | None = None,
                posted: str | None = None) -> Response:
    web = state(request)
    shown = await blocking(signing_keys.view, web.app, now=web.clock())
    return render(request, "signing.html", status_code=status_code,
                  title=translator(request).gettext("Signing certificate"), signing=shown,
                  errors=errors or {}, labels=_labels(request), posted=posted, limit_mb=UPLOAD_LIMIT_MB)


async def signing_page(request: Request, user: str) -> Response:
    return await _page(request)


async def _upload_form(request: Request) -> FormData | None:
    """The posted multipart form (three files at most) when its CSRF token matches the session's."""
    await request.form(max_files=3, max_fields=MAX_FORM_FIELDS, max_part_size=_TEXT_LIMIT)
    return await checked_form(request)  # the form parsed above: this checks its CSRF token


async def _file(form: FormData, name: str) -> bytes | None:
    """An uploaded file's bytes; None when none was chosen (an empty part)."""
    part = form.get(name)
    if not isinstance(part, UploadFile) or not (part.filename or part.size):
        return None
    return await part.read(_FILE_LIMIT + 1)


async def upload(request: Request, user: str) -> Response:
    try:
        form = await _upload_form(request)
        if form is None:
            return error_page(request, 403, translator(request).gettext(EXPIRED))
        return await _store(request, user, form)
    finally:
        await request.close()  # the spooled uploads' temporary files go now, not at GC


async def _store(request: Request, user: str, form: FormData) -> Response:
    web = state(request)
    tr = translator(request)
    kind = str(form.get("kind") or "")
    if kind not in KINDS:
        return await _page(request, status_code=400, errors={"pkcs12": tr.gettext(CHOOSE_PKCS12)},
                           posted="pkcs12")
    fields = FIELDS[kind]
    files = {name: await _file(form, name) for name in (("pkcs12",) if kind == "pkcs12" else ("key", "cert"))}
    errors: dict[str, str] = {}
    for name, data in files.items():
        if data is None:
            errors[name] = tr.gettext(CHOOSE[name])
    if sum(len(d or b"") for d in files.values()) > _FILE_LIMIT:
        errors[next(iter(files))] = tr.gettext(TOO_LARGE) % {"n": UPLOAD_LIMIT_MB}
    if errors:
        return await _page(request, status_code=400, errors=errors, posted=kind)
    passphrase = form.get("p12_passphrase" if kind == "pkcs12" else "key_passphrase")
    try:
        facts = await blocking(signing_keys.store, web.app, now=web.clock(), actor=actor(user),
                               passphrase=passphrase if isinstance(passphrase, str) else None,
                               pkcs12=files.get("pkcs12"), key=files.get("key"), cert=files.get("cert"))
    except signing_keys.IdentityRefused as exc:
        return await _page(request, status_code=400, posted=kind,
                           errors={fields[exc.part]: tr.gettext(REFUSED) % {"reason": exc}})
    except signing_keys.SigningError as exc:  # no DELIVERY_SECRET_KEY to keep it under
        return await _page(request, status_code=409, posted=kind,
                           errors={next(iter(files)): tr.gettext(REFUSED) % {"reason": exc}})
    flash(request, "ok", tr.gettext("The certificate %(subject)s is stored, its key encrypted. It is not "
                                    "shown again.") % {"subject": facts.subject})
    return RedirectResponse(PATH, status_code=303)


routes = [
    Route(PATH, owner_required(signing_page), methods=["GET"]),
    Route(PATH, owner_required(upload), methods=["POST"]),
]
