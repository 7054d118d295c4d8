"""Two dossier editions (English and Armenian, ~6 MB each at 80,000 signers) → the time to sign
them: one after the other, in two threads (assemble_bundle's `workers`), and in two processes.

    .venv/bin/python bench/signing.py [--signers 80000] [--languages en,hy]
                                      [--level B-B|B-T|B-LTA] [--tsa-delay SECONDS] [--rounds 5]
                                      [--cache DIR]

The editions are built once by the project's own build (bench/dossier.py's synthetic signers,
stored through the service's importer, composed and rendered as the service does, in a process
of its own) and kept in --cache (var/bench/signing/), so later runs only sign. Each edition is
signed as the service signs it: dossier.json embedded in the signing revision, the edition's
reason and place in its language, the visible signature on part 1's letter page; then the
manifest and its detached signature, in every mode.

- `--level B-B` (default): a demo EC P-256 key, nothing asked of the network.
- `--level B-T`: each signature and the manifest's timestamped by pyHanko's test authority in
  this process, answering after `--tsa-delay` seconds (a real one is a network round trip away).
- `--level B-LTA`: the tests' PKI (tests/support/pki.py: certomancer's OCSP responder, CRLs and
  timestamp authority over HTTP on loopback, in a process of its own, whose CPU is counted).

Modes, taking turns for --rounds rounds after one unmeasured signing (imports, the stamp's font);
wall and CPU time of the whole process tree and its peak memory (bench/_measure.py),
the median round printed with the best wall time, then the ratios against sequential:

- sequential: `assemble_bundle(..., workers=1)`;
- threads ×2: `assemble_bundle(..., workers=2)`;
- processes ×2 cold: each edition's `finish_pdf` in a forkserver ProcessPoolExecutor of two
  started inside the measurement (what a pool made per bundle costs), then the manifest;
- processes ×2 warm: the same with the pool started before (the best processes can do).

Every mode's last bundle is checked with the project's own verify before anything is printed.
"""

from __future__ import annotations

import argparse
import functools
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import _paths

if TYPE_CHECKING:
    from _measure import Result

    from delivery.artifacts import BundleFile, UnsignedPdf
    from delivery.bundle.appearance import Appearance
    from delivery.bundle.assemble import BundleFacts
    from delivery.bundle.ltv import SignaturePolicy
    from delivery.bundle.sign import SigningIdentity

# Pool workers run this file's top level again (multiprocessing's forkserver): it imports
# nothing more, the work's modules are imported where they are used.
REPO = _paths.FOLDER.parent
CACHE = REPO / "var" / "bench" / "signing"
CAMPAIGN = REPO / "schedules" / "salman-mukaev.toml"
CREATED = datetime(2025, 1, 15, 9, tzinfo=UTC)
DOSSIER_ID = "BENCH-SIGN-1"


@dataclass(frozen=True)
class Job:
    """One edition and what its signature says, picklable for a worker process."""

    pdf: UnsignedPdf
    reason: str
    location: str
    appearance: Appearance | None


@dataclass(frozen=True)
class Setup:
    """What every mode signs with, picklable for a worker process. `tsa_delay`: the test
    authority of this process answers B-T's timestamps after that long; None for B-B and B-LTA."""

    facts: BundleFacts
    level: str
    timestamp_url: str | None
    key: Path
    cert: Path
    trust: Path  # the root certificate: B-LTA's trust root, what verify is given
    tsa_delay: float | None

    @property
    def policy(self) -> SignaturePolicy:
        from delivery.bundle.ltv import SignaturePolicy

        # asn1crypto's certificates do not survive pickling: each process reads its own
        roots = _roots(self.trust) if self.level == "B-LTA" else ()
        return SignaturePolicy(self.level, self.timestamp_url, roots)


@functools.cache
def _roots(path: Path) -> tuple[Any, ...]:
    from pyhanko.keys import load_certs_from_pemder_data

    return tuple(load_certs_from_pemder_data(path.read_bytes()))


# ---------------------------------------------------------------- the editions, built once

def build(signers: int, languages: Sequence[str], folder: Path) -> None:
    """The dossier of `signers` synthetic signers in `languages`, built as the service builds
    it → its unsigned PDFs and the facts of its bundle, written to `folder`."""
    from dossier import SignerStore

    from delivery.campaigns.config import load_campaign
    from delivery.dossier.stored import compose_stored
    from delivery.pdf.build import build_dossier_pdfs

    campaign = load_campaign(CAMPAIGN)
    with tempfile.TemporaryDirectory(prefix="signing-bench-") as tmp:
        store = SignerStore(f"sqlite:///{tmp}/signers.sqlite3", campaign)
        try:
            store.fill(signers)
            dossier, read_lines = compose_stored(
                store.engine, store.campaign, store.frozen(CREATED), dossier_id=DOSSIER_ID,
                created_at=CREATED, trigger="milestone", milestone=signers,
                addressees=campaign.recipients, signed=True, now=datetime.now(UTC))
            pdfs = build_dossier_pdfs(dossier, REPO / "templates", languages=languages,
                                      cache_dir=Path(tmp) / "cache", read_lines=read_lines)
        finally:
            store.close()
    folder.mkdir(parents=True, exist_ok=True)
    for pdf in pdfs:
        (folder / pdf.name).write_bytes(pdf.data)
    last_number, last_signed_on = dossier.last_line
    facts = {"campaign_slug": campaign.slug, "campaign_title": campaign.title,
             "dossier_id": DOSSIER_ID, "trigger": "milestone", "milestone": signers,
             "signer_count": dossier.signer_count, "listed_count": dossier.listed_count,
             "last_signer_number": last_number,
             "last_signer_signed_on": last_signed_on.isoformat() if last_signed_on else None,
             "template_version": "bench"}
    (folder / "index.json").write_text(json.dumps({"facts": facts, "pdfs": [
        {"name": p.name, "language": p.language, "part": p.part, "parts": p.parts,
         "pages": p.pages} for p in pdfs]}, indent=2), encoding="utf-8")


def editions(folder: Path) -> tuple[list[UnsignedPdf], BundleFacts]:
    """The unsigned PDFs `build` kept in `folder`, and the facts of their bundle."""
    from delivery.artifacts import UnsignedPdf
    from delivery.bundle.assemble import BundleFacts

    kept = json.loads((folder / "index.json").read_text(encoding="utf-8"))
    pdfs = [UnsignedPdf(name=e["name"], language=e["language"], part=e["part"], parts=e["parts"],
                        pages=e["pages"], data=(folder / e["name"]).read_bytes())
            for e in kept["pdfs"]]
    facts, signed_on = kept["facts"], kept["facts"]["last_signer_signed_on"]
    return pdfs, BundleFacts(**(facts | {
        "last_signer_signed_on": date.fromisoformat(signed_on) if signed_on else None,
        "created_at": CREATED}))


def jobs_for(pdfs: Sequence[UnsignedPdf]) -> list[Job]:
    """Each edition with the signature texts and appearance the service gives it."""
    from delivery.campaigns.config import load_campaign
    from delivery.services.pipeline import signature_appearance, signature_text

    campaign = load_campaign(CAMPAIGN)
    templates = REPO / "templates"
    return [Job(pdf, *signature_text(templates, campaign, pdf.language),
                signature_appearance(templates, pdf.language) if pdf.part == 1 else None)
            for pdf in pdfs]


# ---------------------------------------------------------------- the services signing asks

def slow_test_authority(delay: float) -> None:
    """B-T's timestamps from pyHanko's test authority, in this process, each after `delay` s."""
    import asyncio

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from pyhanko.keys import load_certs_from_pemder_data, load_private_key_from_pemder_data
    from pyhanko.sign.timestamps.dummy_client import DummyTimeStamper

    from delivery.bundle import ltv
    from delivery.bundle.sign import demo_certificate

    key = rsa.generate_private_key(65537, 2048)
    cert = demo_certificate(key, "Bench TSA", now=datetime.now(UTC))  # type: ignore[arg-type]

    class Slow(DummyTimeStamper):
        async def async_request_tsa_response(self, req: Any) -> Any:
            await asyncio.sleep(delay)
            return self.request_tsa_response(req)

    stamper = Slow(
        tsa_cert=next(iter(load_certs_from_pemder_data(cert.public_bytes(serialization.Encoding.DER)))),
        tsa_key=load_private_key_from_pemder_data(key.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()), passphrase=None))

    def timestamper(policy: SignaturePolicy) -> Slow | None:
        return stamper if policy.timestamped else None

    ltv.timestamper = timestamper  # type: ignore[assignment]


@contextmanager
def test_pki(folder: Path) -> Iterator[dict[str, str]]:
    """tests/support/pki.py's PKI served by a child process until the block ends → its timestamp
    URL, root certificate and the signer's key and certificate chain files."""
    child = subprocess.Popen([sys.executable, __file__, "--serve-pki", str(folder)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert child.stdin is not None and child.stdout is not None
    try:
        yield json.loads(child.stdout.readline())
    finally:
        child.stdin.close()
        child.wait(timeout=30)


def serve_pki(folder: Path) -> None:
    """The child of test_pki: serves until its standard input closes."""
    sys.path.append(str(REPO))
    from tests.support.pki import running_pki

    with running_pki(folder) as pki:
        key, cert = pki.signing_files()
        print(json.dumps({"tsa_url": pki.tsa_url, "root": str(pki.root_pem), "key": str(key),
                          "cert": str(cert)}), flush=True)
        sys.stdin.read()


# ---------------------------------------------------------------- the modes

_worker: dict[str, Any] = {}


def start_worker(setup: Setup) -> None:
    """A pool process's initializer: the identity loaded once, the authority as in the parent."""
    _worker["identity"] = load(setup)
    _worker["setup"] = setup
    if setup.tsa_delay is not None:
        slow_test_authority(setup.tsa_delay)


def load(setup: Setup) -> SigningIdentity:
    from delivery.bundle.sign import load_identity
    from delivery.settings import Settings

    settings = Settings(home=REPO, database_url="sqlite://", smtp=None, outbox_dir=REPO,
                        var_dir=REPO, signing_key=setup.key, signing_cert=setup.cert)
    return load_identity(settings, now=datetime.now(UTC))


def in_threads(jobs: Sequence[Job], setup: Setup, identity: SigningIdentity,
               workers: int) -> list[BundleFile]:
    """The bundle as the service makes it, `workers` editions signed at once."""
    from delivery.bundle.assemble import assemble_bundle

    return assemble_bundle([j.pdf for j in jobs], setup.facts, identity, reason=jobs[0].reason,
                           location=jobs[0].location, policy=setup.policy,
                           signature_texts={j.pdf.language: (j.reason, j.location) for j in jobs},
                           appearances={j.pdf.language: j.appearance for j in jobs if j.appearance},
                           workers=workers)


def finish_in_worker(job: Job) -> BundleFile:
    from delivery.bundle.assemble import finish_pdf

    setup: Setup = _worker["setup"]
    return finish_pdf(job.pdf, setup.facts, _worker["identity"], reason=job.reason,
                      location=job.location, policy=setup.policy, appearance=job.appearance)


def in_processes(pool: Executor, jobs: Sequence[Job], setup: Setup,
                 identity: SigningIdentity) -> list[BundleFile]:
    """Each edition signed in `pool`, then the manifest and its signature here, as assemble_bundle
    ends a bundle."""
    from delivery.artifacts import BundleFile
    from delivery.bundle.assemble import MANIFEST_NAME, SIGNATURE_NAME, manifest_json
    from delivery.bundle.sign import sign_detached

    files = list(pool.map(finish_in_worker, jobs))
    manifest = manifest_json(setup.facts, [(j.pdf, f) for j, f in zip(jobs, files, strict=True)],
                             identity)
    return [*files, BundleFile(name=MANIFEST_NAME, kind="manifest", language="", part=0, pages=None,
                               data=manifest),
            BundleFile(name=SIGNATURE_NAME, kind="manifest-signature", language="", part=0,
                       pages=None, data=sign_detached(manifest, identity, setup.policy))]


def process_pool(setup: Setup) -> ProcessPoolExecutor:
    """Two workers forked from a server with the signing code loaded, as delivery.pdf.pool's
    server has the renderers."""
    import multiprocessing

    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["delivery.bundle.assemble", "delivery.services.pipeline"])
    return ProcessPoolExecutor(max_workers=2, mp_context=ctx, initializer=start_worker,
                               initargs=(setup,))


# ---------------------------------------------------------------- measuring

Mode = Callable[[], list["BundleFile"]]


def measure(modes: dict[str, Mode], rounds: int, trust: Path) -> dict[str, list[Result]]:
    """Each mode run `rounds` times, the modes taking turns (a slower minute of a shared machine
    falls on all of them); each mode's last bundle checked with the project's verify."""
    from _measure import measured

    results: dict[str, list[Result]] = {label: [] for label in modes}
    last: dict[str, list[BundleFile]] = {}
    for _ in range(rounds):
        for label, run in modes.items():
            with measured(label, results[label]) as record:
                last[label] = run()
                for f in last[label]:
                    if f.kind == "pdf":
                        record(f.pages or 0, f.size)
    for label, files in last.items():
        check(label, files, trust)
    return results


def check(label: str, files: Sequence[BundleFile], trust: Path) -> None:
    """SystemExit unless the project's verify accepts the bundle."""
    from delivery.bundle.verify import verify_path

    with tempfile.TemporaryDirectory(prefix="signing-bench-") as tmp:
        for f in files:
            (Path(tmp) / f.name).write_bytes(f.data)
        report = verify_path(Path(tmp), trust=trust)
    if not report.ok:
        raise SystemExit(f"{label}: the bundle does not verify:\n" + "\n".join(report.lines()))


def median(results: Sequence[Result]) -> Result:
    """The round of median wall time (the lower middle one of an even number)."""
    return sorted(results, key=lambda r: r.wall)[(len(results) - 1) // 2]


def line(label: str, results: Sequence[Result], reference: Result | None) -> str:
    mid = median(results)
    text = (f"{label:<18} wall {mid.wall:6.3f} s (best {min(r.wall for r in results):6.3f})   "
            f"cpu {mid.cpu:6.2f} s   peak {mid.peak / 2**20:5.0f} MB   {mid.pages:5d} pages "
            f"{mid.size / 2**20:5.1f} MB")
    if reference is not None:
        text += f"   ×{mid.wall / reference.wall:.3f} wall, ×{mid.cpu / reference.cpu:.3f} cpu"
    return text


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--signers", type=int, default=80_000)
    parser.add_argument("--languages", default="en,hy")
    parser.add_argument("--level", choices=("B-B", "B-T", "B-LTA"), default="B-B")
    parser.add_argument("--tsa-delay", type=float, default=0.0,
                        help="seconds B-T's test timestamp authority takes to answer (default 0)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--cache", type=Path, default=CACHE,
                        help="where the built editions are kept (default var/bench/signing)")
    parser.add_argument("--build-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--serve-pki", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_pki is not None:
        serve_pki(args.serve_pki)
        return
    languages = args.languages.split(",")
    if len(languages) < 2 or args.signers < 1 or args.rounds < 1:
        parser.error("two or more --languages, positive --signers and --rounds")
    if args.tsa_delay and args.level != "B-T":
        parser.error("--tsa-delay is for --level B-T")
    folder = args.cache.resolve() / f"{args.signers}-{'-'.join(languages)}"
    if args.build_only:
        build(args.signers, languages, folder)
        return
    if not (folder / "index.json").is_file():
        # in a process of its own: its render pool would otherwise start the forkserver,
        # preloaded for rendering, that the processes measured here are forked from
        say(f"building the {args.languages} editions at {args.signers:,} signers into {folder}")
        subprocess.run([sys.executable, __file__, "--signers", str(args.signers), "--languages",
                        args.languages, "--cache", str(args.cache), "--build-only"], check=True)
    with tempfile.TemporaryDirectory(prefix="signing-bench-") as tmp:
        run(args, folder, Path(tmp))


def run(args: argparse.Namespace, folder: Path, tmp: Path) -> None:
    from delivery.bundle.sign import ensure_demo_identity

    pdfs, facts = editions(folder)
    jobs = jobs_for(pdfs)
    with maybe_pki(args.level == "B-LTA", tmp / "pki") as pki:
        if pki is None:
            key, cert = ensure_demo_identity(tmp, "Signing benchmark (self-signed)",
                                             now=datetime.now(UTC) - timedelta(days=1))
            timestamped = args.level == "B-T"
            setup = Setup(facts, args.level, "http://test-authority.invalid/tsa" if timestamped
                          else None, key, cert, cert, args.tsa_delay if timestamped else None)
            if setup.tsa_delay is not None:
                slow_test_authority(setup.tsa_delay)
        else:
            setup = Setup(facts, "B-LTA", pki["tsa_url"], Path(pki["key"]), Path(pki["cert"]),
                          Path(pki["root"]), None)
        identity = load(setup)
        say(f"{len(jobs)} editions: " + ", ".join(
            f"{j.pdf.name} {j.pdf.pages} pages {len(j.pdf.data) / 2**20:.1f} MB" for j in jobs)
            + f"; {args.level}"
            + (f", timestamps after {args.tsa_delay} s" if setup.tsa_delay else "")
            + (", the tests' PKI on loopback" if pki else "") + f"; median of {args.rounds} rounds")
        in_threads(jobs, setup, identity, 1)  # unmeasured: imports, the stamp's font subset

        def cold() -> list[BundleFile]:
            with process_pool(setup) as pool:
                return in_processes(pool, jobs, setup, identity)

        with process_pool(setup) as warm:
            list(warm.map(time.sleep, [0.5, 0.5]))  # both workers started and initialized
            results = measure({
                "sequential": lambda: in_threads(jobs, setup, identity, 1),
                "threads ×2": lambda: in_threads(jobs, setup, identity, 2),
                "processes ×2 cold": cold,
                "processes ×2 warm": lambda: in_processes(warm, jobs, setup, identity)},
                args.rounds, setup.trust)
    reference = median(results["sequential"])
    for label, rows in results.items():
        print(line(label, rows, None if label == "sequential" else reference))


@contextmanager
def maybe_pki(wanted: bool, folder: Path) -> Iterator[dict[str, str] | None]:
    """test_pki(folder) when `wanted`, else None."""
    if not wanted:
        yield None
        return
    with test_pki(folder) as pki:
        yield pki


if __name__ == "__main__":
    main()
