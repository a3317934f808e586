"""The CAB record of a run: sign-off, provenance, risk and "since last run" added to the result,
then the outputs written and sealed (results.json, junit.xml, report.html, the plan as run, the
PDF when asked, manifest.json), then one keyed line appended to the CAB log."""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import provenance
from ..cab.ledger import CabKey, append_cab_log, load_key, verified_entries
from ..environments import REHEARSAL, class_of, run_environment
from ..files import atomic_write_bytes
from ..model import DrillResult
from ..plan import Plan
from ..progress import Progress
from ..signoff import SignOff
from . import write_all
from .manifest import PLAN_AS_RUN, write_manifest
from .risk import assess
from .since import since_last_run

if TYPE_CHECKING:
    from ..lab.base import Lab


@dataclass
class Recording:
    """Where and how a run is recorded (what the `drill run` flags chose)."""

    cab_log: Path
    key: CabKey | None = None
    signoff: SignOff = field(default_factory=SignOff)
    pdf: bool = False
    progress: Progress = field(default_factory=lambda: Progress(quiet=True))

    def the_key(self) -> CabKey:
        if self.key is None:
            self.key = load_key(create=True)
        return self.key


def complete(result: DrillResult, plan: Plan, lab: Lab, rec: Recording) -> None:
    """Add who, what, on what, what risk and what changed, while the lab is still up."""
    previous, _ = verified_entries(rec.cab_log, rec.the_key())
    result.signoff = rec.signoff.to_json()
    result.harness = provenance.harness()
    result.environment_class = provenance.environment_class(result.environment)
    # the run's class and name beside the host's description: lab for a lab, always
    result.environment = {**result.environment, **run_environment(plan.environment, plan.lab.provider)}
    result.system_version = provenance.system_version(lab.api_url)
    result.plan_sha256 = hashlib.sha256(plan_source(plan)).hexdigest()
    current = result.to_json()
    result.since_last_run = since_last_run(current, previous)
    result.risk = assess(current, plan.tier, previous)


def plan_source(plan: Plan) -> bytes:
    if plan.source:
        return plan.source
    try:
        return Path(plan.path).read_bytes()
    except OSError:
        return b""


def write_outputs(
    result: DrillResult, plan: Plan, out_dir: Path, rec: Recording, log: Callable[..., None] = print
) -> dict[str, Path]:
    """Write and seal the outputs, then append the CAB line that holds the manifest's digest."""
    rec.progress("outputs", str(out_dir))
    paths = write_all(result, out_dir)
    paths["plan"] = atomic_write_bytes(Path(out_dir) / PLAN_AS_RUN, plan_source(plan))
    if rec.pdf:
        pdf = make_pdf(paths["html"], result, log)
        if pdf is not None:
            paths["pdf"] = pdf
    digest = write_manifest(out_dir, {"drill": result.drill, "correlation_id": result.correlation_id})
    append_cab_log(rec.cab_log, result, report_path=paths["html"], key=rec.the_key(), manifest=digest, out_dir=out_dir)
    return paths


def make_pdf(html: Path, result: DrillResult, log: Callable[..., None] = print, browser: Any = None) -> Path | None:
    """report.pdf beside report.html (headless Chromium); None, said on stderr, when it cannot be made."""
    from .browser import BrowserUnavailable, print_pdf

    title = f"{result.title or result.drill}: {result.verdict.value.upper()} ({result.correlation_id})"
    banner = REHEARSAL if class_of(result.to_json()) == "lab" else None  # atop every page, in red
    try:
        return print_pdf(html, html.with_name("report.pdf"), title, banner=banner, browser=browser)
    except BrowserUnavailable as exc:
        log(f"drill: no PDF written: {exc}", file=sys.stderr)
        return None
