"""The baseline lifecycle of one finished case, as one pure function: :func:`judge`.

missing -> fail (or create with ``--diffbench-update``); unreadable -> error (or rewrite);
workflow version differs -> version-mismatch; config hash differs -> stale-baseline; otherwise
score every registered metric and gate time and VRAM. ``--diffbench-update`` (all) refreshes a
baseline whose case failed on identity or quality and judges again, so absolute budgets still
fail; ``=missing`` only writes missing and unreadable baselines.

Timing references are never ratcheted as a side effect: a baseline's measurement (seconds per
image, peak VRAM, where it was timed) is rewritten only with its image (created, rewritten, or
refreshed because identity or quality failed), or when asked (``--diffbench-update-timing``):
then a baseline whose image still passes keeps its image and takes this run's measurement, and
one whose measurement is already this run's is not written at all. A relative slowdown alone
fails as ``failed-speed`` under ``--diffbench-update`` too, saying how to accept a new speed.

Before any of that, an output that cannot be a baseline (:func:`output_problem`: smaller than
SSIM can score, non-finite values, fully transparent, (nearly all) one flat colour) is ``invalid-output``: nothing is written in
any update mode and a stored baseline is left as it is. A nearly flat output passes on, with
:func:`output_warning` in results.csv's ``output_warning`` column.

No pytest, no torch, no files: the session gathers :class:`CaseInputs` and the stored baseline,
and writes what the returned :class:`~pytest_diffbench.spec.outcomes.BaselineAction` asks for.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, Mapping, NamedTuple

from pytest_diffbench.judge.checks import SLOWDOWN, Check, Verdict, format_number, judge_gates, judge_identity
from pytest_diffbench.judge.metrics import REGISTRY, ImageSizeMismatch, MetricRegistry, MetricUnavailable, score_images
from pytest_diffbench.judge.metrics.images import to_rgb_array
from pytest_diffbench.judge.metrics.ssim import MIN_SIDE as SSIM_MIN_SIDE
from pytest_diffbench.judge.result import CaseResult
from pytest_diffbench.judge.tolerances import INI_SOURCE, Tolerances
from pytest_diffbench.spec.machine import MachineInfo, format_diff
from pytest_diffbench.spec.measurement import Measurement
from pytest_diffbench.spec.outcomes import BaselineAction, Outcome, UpdateMode
from pytest_diffbench.spec.video import config_frames
from pytest_diffbench.spec.sidecar import Sidecar

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    from PIL import Image

#: The outcomes of a case whose image matches its baseline: --diffbench-update-timing may retime it.
_IMAGE_PASSED = frozenset({Outcome.PASSED, Outcome.FAILED_SPEED, Outcome.FAILED_MEMORY})
#: How a new speed is accepted on purpose; a relative slowdown's failure says it.
ACCEPT_SPEED = ("if the new speed is expected, accept it with: pytest --diffbench --diffbench-update-timing "
                "(--diffbench-update keeps the baseline's timing)")
#: The smallest side an output may have: the smallest SSIM scores.
MIN_OUTPUT_SIDE = SSIM_MIN_SIDE
#: An output with more than this share of its pixels in one colour is flat (one white pixel on
#: black, a few specks): no picture a pipeline means to make.
FLAT_SHARE = 0.999
#: Below this standard deviation (in 0-255 levels, in every channel) an output is nearly flat.
NEAR_FLAT_STD = 1.0
_FP16_HINT = "a float16 VAE overflow gives NaN, decoded as black; try float32 or the fp16-fix VAE"


@dataclass(frozen=True)
class CaseInputs:
    """Everything :func:`judge` needs about the case that just ran."""

    run_id: str
    timestamp: str
    nodeid: str
    case_id: str
    config: Mapping[str, object]
    config_hash: str
    prompt: str
    image: "Image.Image"
    measurement: Measurement
    machine: MachineInfo
    tolerances: Tolerances
    #: Metric name -> auto / required / off (``diffbench_lpips`` for LPIPS).
    metric_modes: Mapping[str, str]
    #: Where network metrics run: the pipeline's device, e.g. ``cpu`` or ``cuda:0``.
    device: str
    strict_env: bool
    worker: str
    workers: int
    pin: str
    #: Display paths (relative to the rootdir) of the baseline image and the run's output image.
    baseline_path: str
    output_path: str
    #: Where the missing-baseline message says the baseline would go.
    case: str = ""
    #: Where ``tolerances`` came from (:attr:`~pytest_diffbench.judge.tolerances.AppliedTolerances.source`).
    tolerance_source: str = INI_SOURCE
    #: The seed plan of the case's seed and the seed's index in it ("" and None: not from a plan).
    seed_plan: str = ""
    seed_index: int | None = None

    @cached_property
    def pixels(self) -> "npt.NDArray[np.uint8]":
        """:attr:`image` as the (H, W, 3) uint8 array the checks and metrics read, converted once."""
        return to_rgb_array(self.image)

    def sidecar(self) -> Sidecar:
        """The sidecar a baseline made from this case holds (its image SHA-256 is the store's to add)."""
        return Sidecar(case=self.case, config=self.config, config_hash=self.config_hash, environment=self.machine,
                       **_timing(self))


@dataclass(frozen=True)
class StoredBaseline:
    """A readable baseline pair: its sidecar and its image."""

    sidecar: Sidecar
    image: "Image.Image"

    @cached_property
    def pixels(self) -> "npt.NDArray[np.uint8]":
        """:attr:`image` as the (H, W, 3) uint8 array the metrics read, converted once."""
        return to_rgb_array(self.image)


@dataclass(frozen=True)
class BrokenBaseline:
    """A baseline that exists but cannot be used; ``message`` names the file and the fault."""

    message: str


BaselineState = StoredBaseline | BrokenBaseline | None


class Judgement(NamedTuple):
    """What :func:`judge` decided: the case's result and what to do with its baseline pair."""

    result: CaseResult
    action: BaselineAction
    #: The sidecar a write records (None when the action writes nothing): the case's own, or for a
    #: timing refresh the stored one with this run's measurement.
    sidecar: Sidecar | None = None
    #: The write keeps the stored image (a timing refresh) instead of writing the case's output.
    keeps_image: bool = False


def judge(inputs: CaseInputs, baseline: BaselineState, update: UpdateMode | None,
          metrics: MetricRegistry = REGISTRY, *, note: str = "", update_timing: bool = False) -> Judgement:
    """The case's result, what to do with its baseline pair, and the sidecar to write.

    When the action writes (created, refreshed, rewritten, retimed) the case was judged against the pair
    as the run after the write will see it. A broken baseline is an error without ``update`` and
    rewritten (:attr:`BaselineAction.REWRITTEN`) in both modes. A relative slowdown alone is never
    refreshed by ``update``; with ``update_timing`` (``--diffbench-update-timing``) a stored
    baseline whose image passes is retimed (:attr:`BaselineAction.RETIMED`): it takes this run's
    measurement and keeps its image,
    unless its measurement is this run's already (nothing is written).

    ``note`` (one line) leads the result's message and failure text: the session passes why the
    write an update asked for did not happen (another run changed the pair meanwhile, or it could
    not be written) when it judges the case again, without ``update``, against what is there now.
    """
    action = BaselineAction.NONE
    problem = output_problem(inputs.image, inputs.measurement, inputs.pixels)
    if problem:
        stored = baseline if isinstance(baseline, StoredBaseline) else None
        return Judgement(_result(inputs, Verdict(Outcome.INVALID_OUTPUT, (problem,)), action, metrics, stored=stored,
                                 note=note), action)
    if baseline is None or isinstance(baseline, BrokenBaseline):
        if update is not None:
            action = BaselineAction.CREATED if baseline is None else BaselineAction.REWRITTEN
            return _own(inputs, action, metrics, note)
        if baseline is None:
            verdict = Verdict(Outcome.MISSING_BASELINE, (
                f"no baseline at {inputs.baseline_path}; create it with: pytest --diffbench --diffbench-update=missing",))
        else:
            verdict = Verdict(Outcome.ERROR, (baseline.message,))
        return Judgement(_result(inputs, verdict, action, metrics, note=note), action)

    env_diff = inputs.machine.diff(baseline.sidecar.environment.as_dict())
    identity = judge_identity(inputs.config, inputs.config_hash, baseline.sidecar.config, baseline.sidecar.config_hash,
                              env_diff, inputs.strict_env)
    if identity is not None:
        if update is UpdateMode.ALL:
            return _own(inputs, BaselineAction.REFRESHED, metrics, note)
        return Judgement(_result(inputs, identity, action, metrics, stored=baseline, env_diff=format_diff(env_diff),
                                 note=note), action)
    verdict = _compare(inputs, baseline, metrics)
    if update is UpdateMode.ALL and _refreshable(verdict, metrics):
        return _own(inputs, BaselineAction.REFRESHED, metrics, note)
    if update_timing and verdict.outcome in _IMAGE_PASSED:
        retimed = StoredBaseline(dataclasses.replace(baseline.sidecar, **_timing(inputs)), baseline.image)
        if retimed.sidecar != baseline.sidecar:
            old = baseline.sidecar.measurement
            now = inputs.measurement.seconds_per_image
            was = f"{format_number(old.seconds_per_image, now)} s" if old is not None else "none"
            now_text = format_number(now, old.seconds_per_image if old is not None else None)
            verdict = dataclasses.replace(_compare(inputs, retimed, metrics), reasons=(
                f"timing reference rewritten (--diffbench-update-timing): {was} -> "
                f"{now_text} s per image; the image is the baseline's",))
            action, baseline = BaselineAction.RETIMED, retimed
    result = _result(inputs, verdict, action, metrics, stored=baseline, env_diff=format_diff(env_diff), note=note)
    if action is BaselineAction.NONE:
        return Judgement(result, action)
    return Judgement(result, action, baseline.sidecar, keeps_image=True)


def _own(inputs: CaseInputs, action: BaselineAction, metrics: MetricRegistry, note: str) -> Judgement:
    """The case's output becomes its baseline (``action`` writes it): judged against itself."""
    return Judgement(_result(inputs, _compare_with_self(inputs, metrics), action, metrics, own_baseline=True, note=note),
                     action, inputs.sidecar())


def _timing(inputs: CaseInputs) -> dict[str, Any]:
    """The sidecar fields of this run's measurement: seconds per image, peak VRAM, where it was timed."""
    return {"measurement": Measurement(inputs.measurement.seconds_per_image, inputs.measurement.peak_vram_mb),
            "device_name": inputs.machine.device_name, "workers": inputs.workers}


def output_problem(image: "Image.Image", measurement: Measurement | None = None,
                   pixels: "npt.NDArray[np.uint8] | None" = None) -> str:
    """Why ``image`` cannot be judged or become a baseline, on one line; "" when it can: smaller
    than SSIM scores, non-finite values when made (``measurement.warnings``), fully transparent
    (alpha 0 everywhere), or flat (at least :data:`FLAT_SHARE` of its pixels one colour).
    ``pixels``: ``image`` already converted by :func:`to_rgb_array` (converted here when None)."""
    import numpy

    array = to_rgb_array(image) if pixels is None else pixels
    height, width = array.shape[:2]
    if min(width, height) < MIN_OUTPUT_SIDE:
        return (f"the output is {width}x{height} px, smaller than SSIM can score (at least {MIN_OUTPUT_SIDE}x"
                f"{MIN_OUTPUT_SIDE}); check the width and height the pipeline makes")
    if measurement is not None and measurement.warnings:
        return (f"the output had non-finite values (NaN or inf) when it was made ({measurement.warnings[0]}); "
                + _FP16_HINT)
    if "A" in image.getbands() and image.getchannel("A").getextrema() == (0, 0):
        return ("the output is fully transparent (alpha 0 in every pixel): the pipeline made no visible picture; "
                "check its output and mode")
    packed = array.reshape(-1, 3).astype(numpy.uint32) @ numpy.array([1 << 16, 1 << 8, 1], dtype=numpy.uint32)
    colours, counts = numpy.unique(packed, return_counts=True)
    common = int(colours[counts.argmax()])
    colour = (common >> 16, (common >> 8) & 255, common & 255)
    if colour == (0, 0, 0):
        cause = f"{_FP16_HINT}; a safety checker also blacks out images it flags"
    else:
        cause = "the pipeline made no picture; check its VAE, LoRAs, steps and output_type"
    if len(colours) == 1:
        return f"the output is one flat colour {colour}: {cause}"
    others = int(counts.sum() - counts.max())
    if others <= (1 - FLAT_SHARE) * counts.sum():
        return (f"the output is one flat colour {colour} but for {others} of {int(counts.sum())} pixels "
                f"(at least {FLAT_SHARE:.1%} one colour): {cause}")
    return ""


def output_warning(image: "Image.Image", pixels: "npt.NDArray[np.uint8] | None" = None) -> str:
    """A note when ``image`` is nearly one flat colour (every channel's standard deviation below
    :data:`NEAR_FLAT_STD` levels) but not exactly; "" otherwise. ``pixels`` as for :func:`output_problem`."""
    array = (to_rgb_array(image) if pixels is None else pixels).reshape(-1, 3).astype("float64")
    spread = float(array.std(axis=0).max())
    if spread == 0.0 or spread >= NEAR_FLAT_STD:
        return ""
    mean = tuple(int(round(v)) for v in array.mean(axis=0))
    return (f"the output is nearly one flat colour {mean} (standard deviation {spread:.2f} levels); "
            "check it is a picture before it becomes a baseline")


def _compare(inputs: CaseInputs, baseline: StoredBaseline, metrics: MetricRegistry) -> Verdict:
    sidecar = baseline.sidecar
    return _scored(inputs, baseline.pixels, sidecar.measurement, sidecar.device_name, sidecar.workers, metrics)


def _compare_with_self(inputs: CaseInputs, metrics: MetricRegistry) -> Verdict:
    """The verdict against a baseline made from this very output (after an update wrote it)."""
    return _scored(inputs, inputs.pixels, inputs.measurement, inputs.machine.device_name, inputs.workers, metrics)


def _scored(inputs: CaseInputs, reference: "npt.NDArray[np.uint8]", measurement: Measurement | None, device_name: str,
            workers: int, metrics: MetricRegistry) -> Verdict:
    try:
        scores = score_images(inputs.pixels, reference, prompt=inputs.prompt, device=inputs.device,
                              modes=inputs.metric_modes, tolerances=inputs.tolerances, metrics=metrics,
                              frames=config_frames(inputs.config))
    except ImageSizeMismatch as exc:
        return Verdict(Outcome.FAILED_QUALITY, (f"output and baseline differ in size: {exc}",))
    except MetricUnavailable as exc:
        return Verdict(Outcome.ERROR, (f"diffbench_{exc.metric or 'metric'} = required, but {exc}",))
    return judge_gates(scores, inputs.tolerances, measurement, device_name, workers, inputs.measurement,
                       inputs.machine.device_name, inputs.workers, metrics)


def _refreshable(verdict: Verdict, metrics: MetricRegistry) -> bool:
    """A quality failure (size mismatch included): an update refreshes it. A relative slowdown
    alone is not (timing is rewritten with the image or on request, see the module docstring)."""
    if verdict.outcome is Outcome.FAILED_QUALITY and not verdict.checks:  # size mismatch
        return True
    refreshable = {m.name for m in metrics}
    return any(check.name in refreshable for check in verdict.failed_checks)


def _result(inputs: CaseInputs, verdict: Verdict, action: BaselineAction, metrics: MetricRegistry, *, stored: StoredBaseline | None = None,
            own_baseline: bool = False, env_diff: str = "", note: str = "") -> CaseResult:
    slowdown = verdict.check(SLOWDOWN)
    if slowdown is not None and slowdown.passed is False:
        verdict = dataclasses.replace(verdict, reasons=(*verdict.reasons, ACCEPT_SPEED))
    if note:
        verdict = dataclasses.replace(verdict, reasons=(note, *verdict.reasons))
    if own_baseline:
        baseline_seconds: float | None = inputs.measurement.seconds_per_image
        baseline_device, baseline_workers = inputs.machine.device_name, inputs.workers
    elif stored is not None and stored.sidecar.measurement is not None:
        baseline_seconds = stored.sidecar.measurement.seconds_per_image
        baseline_device, baseline_workers = stored.sidecar.device_name, stored.sidecar.workers
    else:
        baseline_seconds, baseline_device, baseline_workers = None, "", None
    has_baseline = own_baseline or stored is not None
    scored = [check for check in verdict.checks if metrics.get(check.name) is not None]
    result = CaseResult(
        run_id=inputs.run_id, timestamp=inputs.timestamp, nodeid=inputs.nodeid, case_id=inputs.case_id,
        outcome=verdict.outcome, message=one_line(verdict), config_hash=inputs.config_hash, config=inputs.config,
        scores={c.name: c.value for c in scored}, metric_status={c.name: (c.note or "ok") for c in scored},
        tolerances=inputs.tolerances.as_dict(), measurement=inputs.measurement,
        baseline_seconds_per_image=baseline_seconds, baseline_device_name=baseline_device,
        baseline_workers=baseline_workers,
        slowdown=slowdown.value if slowdown else None, time_check=_time_check(slowdown),
        tolerance_source=inputs.tolerance_source,
        seed_plan=inputs.seed_plan, seed_index=inputs.seed_index,
        machine=inputs.machine, worker=inputs.worker, workers=inputs.workers, env_diff=env_diff, pin=inputs.pin,
        baseline_action=action, baseline_path=inputs.baseline_path if has_baseline else "",
        output_path=inputs.output_path,
        output_warning="" if verdict.outcome is Outcome.INVALID_OUTPUT else output_warning(inputs.image, inputs.pixels),
    )
    return result if verdict.outcome is Outcome.PASSED else result.with_changes(failure_text=failure_text(result, verdict))


def _time_check(check: Check | None) -> str:
    if check is None:
        return ""
    if check.passed is None:
        return check.note if check.limit is not None else "off"
    return "passed" if check.passed else "failed"


def one_line(verdict: Verdict) -> str:
    """The reasons and failed checks on one line (a reason ending in ':' runs on into the next)."""
    parts: list[str] = []
    for line in [line.strip() for line in verdict.reasons]:
        if parts and parts[-1].endswith(":"):
            parts[-1] += " " + line
        else:
            parts.append(line)
    parts += [" ".join(check.render().split()) for check in verdict.failed_checks]
    return "; ".join(parts)


def failure_text(result: CaseResult, verdict: Verdict) -> str:
    """pytest's failure message: the case, every reason and every check against its tolerance, the files."""
    lines = [f"diffbench {verdict.outcome.value}: {result.nodeid}",
             f"  case {result.case_id}, config {result.config_hash[:12]}, pin {result.pin}"]
    lines += [f"  {line}" for line in verdict.reasons]
    if verdict.checks:
        lines.append(f"  tolerances from: {result.tolerance_source}")
    lines += [f"  {check.render()}" for check in verdict.checks]
    if result.env_diff and verdict.outcome is not Outcome.ENV_MISMATCH:  # its reasons list each field
        lines.append(f"  environment differs from the baseline's: {result.env_diff}")
    if result.baseline_path:
        lines.append(f"  baseline: {result.baseline_path}")
    lines.append(f"  output:   {result.output_path}")
    return "\n".join(lines)
