"""The baseline lifecycle of one finished case, in one place.

missing -> fail (or write with --diffbench-update); workflow version differs -> version-mismatch;
config hash differs -> stale-baseline; otherwise compare (SSIM, PSNR, LPIPS) and gate (time,
VRAM). ``--diffbench-update`` (all) refreshes a baseline whose case failed on identity, quality
or relative speed and then judges again, so absolute budgets still fail; ``=missing`` only
writes missing baselines.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

import pytest

from pytest_diffbench.baselines import Baseline, BaselineError, BaselineStore, case_path, pin_key
from pytest_diffbench.environment import collect_environment, environment_diff
from pytest_diffbench.files import encode_png
from pytest_diffbench.gates import Check, Outcome, Verdict, judge_gates, judge_identity
from pytest_diffbench.metrics import ImageSizeMismatch, LpipsUnavailable, compare_images
from pytest_diffbench.results import ENVIRONMENT_FIELDS, write_case_files

if TYPE_CHECKING:
    from pytest_diffbench.case import DiffbenchCase
    from pytest_diffbench.session import DiffbenchSession
    from pytest_diffbench.tolerances import Tolerances

_REFRESHABLE = {"ssim", "psnr", "lpips", "slowdown"}


def evaluate_case(session: "DiffbenchSession", item: pytest.Item, dcase: "DiffbenchCase") -> tuple[dict[str, Any], str | None]:
    """Judge the case, write what the update mode asks for, and return its results row and,
    when the outcome is not passed, the failure text (every number against its tolerance)."""
    settings = session.settings
    assert dcase.config is not None and dcase.image is not None and dcase.measurement is not None
    config, config_dict, config_hash = dcase.config, dcase.config.to_dict(), dcase.config.hash
    env = collect_environment(str(getattr(dcase.pipeline, "device", "cpu")))
    pin = pin_key(settings.pin, {"device": config.device, "dtype": config.dtype, "device_name": env["device_name"],
                                 "torch": env["torch"], "diffusers": env["diffusers"], "platform": env["platform"]})
    store = BaselineStore(settings.baseline_dir, pin)
    case = case_path(item.nodeid)
    sidecar_config = json.dumps({"config": config_dict, "config_hash": config_hash}, indent=2, sort_keys=True) + "\n"
    output_path = write_case_files(session.run_dir, case, encode_png(dcase.image), sidecar_config)
    measurement = {"seconds_per_image": dcase.measurement.seconds_per_image,
                   "peak_vram_mb": dcase.measurement.peak_vram_mb, "device_name": env["device_name"],
                   "workers": session.workers}
    tolerances = session.tolerances_for(item)
    action = ""

    def write_baseline(kind: str) -> Baseline:
        nonlocal action
        action = kind
        return store.write(case, dcase.image, config=config_dict, config_hash=config_hash,
                           environment=env, measurement=measurement, keep_replaced_in=session.run_dir)

    try:
        baseline, broken = store.load(case), None
    except BaselineError as exc:
        baseline, broken = None, exc
    image_path, _ = store.paths(case)

    if baseline is None and settings.update:
        baseline = write_baseline("created" if broken is None else "rewritten")
    if baseline is None:
        verdict = Verdict(Outcome.ERROR, [str(broken)]) if broken else Verdict(Outcome.MISSING_BASELINE, [
            f"no baseline at {_relative(image_path, session)}; create it with: pytest --diffbench --diffbench-update=missing"])
        env_diff: dict[str, tuple[Any, Any]] = {}
    else:
        env_diff = environment_diff(baseline.environment, env)
        identity = judge_identity(config_dict, config_hash, baseline.config, baseline.config_hash, env_diff, settings.strict_env)
        if identity is not None and settings.update == "all":
            baseline, env_diff, identity = write_baseline("refreshed"), {}, None
        verdict = identity or _compare(dcase, baseline, tolerances, settings.lpips, measurement)
        if settings.update == "all" and not action and _refreshable(verdict):
            baseline, env_diff = write_baseline("refreshed"), {}
            verdict = _compare(dcase, baseline, tolerances, settings.lpips, measurement)

    record = session.base_record(
        item, dcase.case,
        config_hash=config_hash, **config_dict,
        outcome=verdict.outcome.value,
        message=_one_line(verdict),
        **_check_columns(verdict, tolerances),
        seconds_per_image=dcase.measurement.seconds_per_image,
        peak_vram_mb=dcase.measurement.peak_vram_mb,
        warmup_seconds=dcase.measurement.warmup_seconds,
        baseline_seconds_per_image=(baseline.measurement.get("seconds_per_image") if baseline else None),
        **{key: env.get(key, "") for key in ENVIRONMENT_FIELDS},
        env_diff="; ".join(f"{k}: {old} -> {new}" for k, (old, new) in sorted(env_diff.items())),
        pin=pin,
        baseline_action=action,
        baseline_path=_relative(image_path, session) if baseline else "",
        output_path=_relative(output_path, session),
    )
    if verdict.outcome is Outcome.PASSED:
        return record, None
    return record, _failure_text(dcase, config.short_hash, pin, verdict, record)


def _compare(dcase: "DiffbenchCase", baseline: Baseline, tolerances: "Tolerances", lpips_mode: str,
             measurement: Mapping[str, Any]) -> Verdict:
    assert dcase.measurement is not None and dcase.image is not None
    try:
        scores = compare_images(baseline.load_image(), dcase.image, lpips_mode=lpips_mode,
                                device=str(getattr(dcase.pipeline, "device", "cpu")))
    except ImageSizeMismatch as exc:
        return Verdict(Outcome.FAILED_QUALITY, [f"output and baseline differ in size: {exc}"])
    except LpipsUnavailable as exc:
        return Verdict(Outcome.ERROR, [f"diffbench_lpips = required, but {exc}"])
    return judge_gates(scores, tolerances, baseline.measurement, measurement)


def _refreshable(verdict: Verdict) -> bool:
    if verdict.outcome is Outcome.FAILED_QUALITY and not verdict.checks:  # size mismatch
        return True
    return any(check.passed is False and check.name in _REFRESHABLE for check in verdict.checks)


def _check_columns(verdict: Verdict, tolerances: "Tolerances") -> dict[str, Any]:
    """Metric values, the lpips status and the relative-timing note, plus every applied tolerance."""
    columns: dict[str, Any] = dict(tolerances.as_dict())
    for column, name in (("ssim", "ssim"), ("psnr", "psnr"), ("lpips", "lpips"), ("slowdown", "slowdown")):
        check = verdict.check(name)
        columns[column] = check.value if check else None
    lpips = verdict.check("lpips")
    columns["lpips_status"] = (lpips.note or "ok") if lpips else ""
    columns["time_check"] = _time_check(verdict.check("slowdown"))
    return columns


def _time_check(check: Check | None) -> str:
    """passed / failed, 'off' without a time_regression tolerance, or why it was skipped."""
    if check is None:
        return ""
    if check.passed is None:
        return check.note if check.limit is not None else "off"
    return "passed" if check.passed else "failed"


def _one_line(verdict: Verdict) -> str:
    """The reasons and failed checks on one line (a reason ending in ':' runs on into the next)."""
    parts: list[str] = []
    for line in [line.strip() for line in verdict.reasons]:
        if parts and parts[-1].endswith(":"):
            parts[-1] += " " + line
        else:
            parts.append(line)
    parts += [" ".join(check.render().split()) for check in verdict.checks if check.passed is False]
    return "; ".join(parts)


def _failure_text(dcase: "DiffbenchCase", short_hash: str, pin: str, verdict: Verdict, record: Mapping[str, Any]) -> str:
    lines = [f"diffbench {verdict.outcome.value}: {dcase.nodeid}", f"  case {dcase.id}, config {short_hash}, pin {pin}"]
    lines += [f"  {line}" for line in verdict.reasons]
    lines += [f"  {check.render()}" for check in verdict.checks]
    if record.get("env_diff"):
        lines.append(f"  environment differs from the baseline's: {record['env_diff']}")
    if record.get("baseline_path"):
        lines.append(f"  baseline: {record['baseline_path']}")
    lines.append(f"  output:   {record['output_path']}")
    return "\n".join(lines)


def _relative(path: Path, session: "DiffbenchSession") -> str:
    try:
        return Path(path).resolve().relative_to(session.config.rootpath.resolve()).as_posix()
    except ValueError:
        return Path(path).as_posix()
