"""``diffbench replay BUNDLE_OR_RUN [-k EXPR] [--device D] [--model-root DIR]``.

Regenerates every chosen case (``-k``: pytest's keyword expression over the node id, see
:mod:`pytest_diffbench.cli.keywords`) of a bundle (``diffbench-<run_id>.zip``, or the folder it
was unzipped into; either is checked against its manifest.json) or a run folder from its
frozen config alone (``configs/<case>.json``, and the input images in ``inputs/``), through the
plugin's own generation code (:mod:`pytest_diffbench.run.replay`), and compares each image with
the one the bundle holds:

* ``identical``: the same PNG bytes, or the same pixels;
* ``within tolerance``: other pixels, every image metric the case gates (results.csv's
  ``min_ssim``, ``min_psnr``, ``max_lpips`` ...) within its recorded tolerance;
* ``different``: any gated metric beyond its tolerance, another size, or no metric gated;
* ``not replayed``: the config cannot be rebuilt alone (a refiner, LoRAs, ControlNets,
  IP-Adapter or array inputs, a pipeline of the test's own), its model cannot be loaded, or the
  bundle holds no image of it (made with ``--diffbench-bundle-images=failures``); one line each
  saying why;
* a case that ended before generating (no config) has nothing to replay and is only listed.

Beside a case's line, a note says when the loaded pipeline differs from the config (its weight
fingerprint, the scheduler the sampler builds, dtype, device, ...).

Exit status: 0 when every chosen case is identical or within tolerance; 1 when any is
different; 3 when none is different but some could not be replayed (so a CI job never takes an
unchecked case for a replayed one; choose cases with ``-k``); 2 for a bundle or run that cannot
be read (not a zip, a manifest mismatch, no output images at all, no case matching ``-k``):
one line naming the file.
"""

from __future__ import annotations

import io
import json
import tempfile
import zipfile
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from enum import Enum
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Sequence

from pytest_diffbench.cli.keywords import keyword_filter
from pytest_diffbench.cli.runs import load_results, reading, resolve_run, run_file
from pytest_diffbench.cli.settings import CliSettings, CommandError
from pytest_diffbench.judge.checks import format_number, metric_check
from pytest_diffbench.judge.metrics import REGISTRY, ImageSizeMismatch, score_images, tolerance_name
from pytest_diffbench.judge.result import CaseResult
from pytest_diffbench.report.bundle import MANIFEST, folder_manifest_mismatches, manifest_mismatches, zip_names
from pytest_diffbench.spec.sidecar import Sidecar, SidecarError
from pytest_diffbench.spec.video import config_frames
from pytest_diffbench.store.files import PathEscapeError, encode_png, inside
from pytest_diffbench.store.paths import case_path
from pytest_diffbench.store.run_folder import IMAGES_DIR, INPUTS_DIR, RunFolder

if TYPE_CHECKING:
    from PIL import Image

    from pytest_diffbench.run.replay import Replayer


class ReplayVerdict(str, Enum):
    """What the replay of one case found."""

    IDENTICAL = "identical"
    WITHIN = "within tolerance"
    DIFFERENT = "different"
    NOT_REPLAYED = "not replayed"
    NOTHING = "nothing to replay"


#: The exit status when no case is different but some could not be replayed.
NOT_ALL_REPLAYED = 3


@dataclass(frozen=True)
class Replayed:
    """One case's verdict, what it rests on (``detail``, one line) and how the loaded pipeline
    differs from the config (``notes``)."""

    nodeid: str
    verdict: ReplayVerdict
    detail: str = ""
    notes: tuple[str, ...] = ()

    def lines(self) -> list[str]:
        head = f"{self.verdict.value:<17} {self.nodeid}" + (f": {self.detail}" if self.detail else "")
        return [head, *(f"{'':17}   note: {note}" for note in self.notes)]


def command_replay(settings: CliSettings, target: str, *, keywords: Sequence[str], device: str | None,
                   model_root: str | None) -> int:
    """Replay the cases of ``target`` (a bundle's path or unzipped folder, or a run: id, ``latest``
    or its folder) chosen by ``keywords`` (pytest -k expressions over the node id, a case matching
    any is chosen; none: all); print one line per case and a tally; the exit status (see the
    module docstring)."""
    matches = keyword_filter(keywords)  # a bad expression is refused before the bundle is read
    if device is not None:
        device = checked_device(device)
    with _opened(settings, target) as folder:
        results = load_results(folder)
        chosen = [result for result in results if matches(result.nodeid)]
        if not chosen:
            raise CommandError(f"no case of {target} matches -k {' / '.join(keywords)} (its {len(results)} cases: "
                               f"{', '.join(r.nodeid for r in results[:3])}{' ...' if len(results) > 3 else ''})")
        images = run_file(folder, folder.path / IMAGES_DIR)
        if not images.is_dir() or not any(images.rglob("*.png")):
            raise CommandError(f"{target} holds no output image to compare with (its run had diffbench_bundle_images "
                               "= none, or = failures and no case failed); make the run with "
                               "--diffbench-bundle-images=all")
        configs = {result.nodeid: _config(folder, result) for result in chosen}
        replayer = _replayer(folder, configs, device, Path(model_root) if model_root else settings.rootdir)
        replayed = []
        for result in chosen:
            case = _replay(folder, result, configs[result.nodeid], replayer, device)
            replayed.append(case)
            for line in case.lines():
                print(line, flush=True)
    counts = {verdict: sum(case.verdict is verdict for case in replayed) for verdict in ReplayVerdict}
    print(f"replayed {len(replayed)} case{'s' if len(replayed) != 1 else ''} of {target}: "
          + ", ".join(f"{count} {verdict.value}" for verdict, count in counts.items() if count))
    if counts[ReplayVerdict.DIFFERENT]:
        return 1
    return NOT_ALL_REPLAYED if counts[ReplayVerdict.NOT_REPLAYED] else 0


def checked_device(device: str) -> str:
    """The ``--device`` option, checked before any case: one usage error (CommandError, exit 2)
    naming ``--device`` and the valid values, or the devices this machine has."""
    from pytest_diffbench.spec.targets import check_available, check_device

    try:
        value = check_device(device)
    except ValueError as exc:
        raise CommandError(f"--device {device}: {exc}") from None
    if value in ("auto", "cpu"):
        return value
    import torch  # a replay on cuda or mps loads torch anyway

    mps = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
    try:
        return check_available(value, cuda_count=torch.cuda.device_count(), mps=mps)
    except ValueError as exc:
        raise CommandError(f"--device {device}: {exc}") from None


# -- the bundle or run --------------------------------------------------------------------------


@contextmanager
def _opened(settings: CliSettings, target: str) -> Iterator[RunFolder]:
    """The run folder of ``target``: a bundle (a file: the zip; a folder holding manifest.json: the
    zip unzipped) checked against its manifest and copied into a temporary folder for the time of
    the block, else a run (id, ``latest``, its folder). Raises CommandError (one line naming the
    file) for a bundle that is not a zip, lacks its manifest, does not match it, or names a file
    outside itself; for a missing ``*.zip``; and for a folder that is neither a run nor a bundle."""
    path = Path(target)
    if path.is_file() or (path.is_dir() and (path / MANIFEST).is_file()):
        with tempfile.TemporaryDirectory(prefix="diffbench-replay-") as temporary:
            yield _unpacked(path, Path(temporary))
        return
    if path.suffix.lower() == ".zip":
        raise CommandError(f"no bundle {target}: {path.absolute()} does not exist")
    try:
        folder = resolve_run(settings.output_dir, target)
    except CommandError as exc:
        if path.is_dir():
            raise CommandError(f"{exc}; or pass a bundle: its diffbench-<run_id>.zip, or the folder it was unzipped "
                               f"into (it holds {MANIFEST}, and {target} does not)") from None
        raise
    yield folder


def _unpacked(bundle: Path, into: Path) -> RunFolder:
    """The bundle's files (``bundle``: the zip, or the folder it was unzipped into), checked against
    its manifest, as the run folder ``into/<run_id>``. Raises CommandError (one line naming the
    bundle) when it cannot be read or is corrupt."""
    try:
        with ExitStack() as stack:
            return _copied(bundle, into, stack)
    except (zipfile.BadZipFile, KeyError, ValueError, TypeError, OSError) as exc:  # PathEscapeError is a ValueError
        reason = f"it has no {MANIFEST}" if isinstance(exc, KeyError) else " ".join(str(exc).split())
        raise CommandError(f"cannot read the bundle {bundle}: {reason} (a bundle is the diffbench-<run_id>.zip "
                           "pytest --diffbench writes in the run folder, or the folder it was unzipped into)") from None


def _copied(bundle: Path, into: Path, stack: ExitStack) -> RunFolder:
    """:func:`_unpacked`'s work; the zip stays open on ``stack``. Raises CommandError for a
    corrupt bundle, and what reading it raises."""
    if bundle.is_dir():
        bad = folder_manifest_mismatches(bundle)
        files = {name: inside(bundle, name).read_bytes
                 for name in (path.relative_to(bundle).as_posix() for path in bundle.rglob("*") if path.is_file())}
    else:
        bad = manifest_mismatches(bundle)
        archive = stack.enter_context(zipfile.ZipFile(bundle))
        files = {name: partial(archive.read, entry) for name, entry in zip_names(archive).items()}
    if bad:
        raise CommandError(f"{bundle} is corrupt: {', '.join(bad[:5])}{' ...' if len(bad) > 5 else ''} "
                           f"{'does' if len(bad) == 1 else 'do'} not match its {MANIFEST}; replay an intact copy "
                           "of the bundle")
    folder = RunFolder(inside(into, str(json.loads(files[MANIFEST]())["run_id"])))
    for name, read in files.items():
        file = inside(folder.path, name)
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_bytes(read())
    return folder


def _config(folder: RunFolder, result: CaseResult) -> dict[str, object] | str:
    """The frozen config of ``result``'s case from ``configs/<case>.json``; else why not (one line)."""
    path = run_file(folder, folder.config(case_path(result.nodeid)))
    if not path.is_file():
        return ""
    try:
        sidecar = reading(path, lambda: Sidecar.from_json(path.read_text(encoding="utf-8"), require_image_sha256=False))
    except (CommandError, SidecarError) as exc:
        return f"{folder.relative(path)} cannot be read: {exc}"
    return dict(sidecar.config)


def _replayer(folder: RunFolder, configs: dict[str, dict[str, object] | str], device: str | None,
              model_root: Path) -> "Replayer":
    """The replayer of the chosen cases; deterministic when any config was made with the switch."""
    from pytest_diffbench.run.replay import Replayer

    def input_file(name: str) -> bytes:
        try:
            path = inside(folder.path / INPUTS_DIR, name)
        except PathEscapeError:
            raise KeyError(name) from None
        if not path.is_file():
            raise KeyError(name)
        return path.read_bytes()

    deterministic = any(isinstance(config, dict) and config.get("deterministic") for config in configs.values())
    return Replayer(input_file, model_root=model_root, device=device, deterministic=deterministic)


# -- one case -----------------------------------------------------------------------------------


def _replay(folder: RunFolder, result: CaseResult, config: dict[str, object] | str, replayer: "Replayer",
            device: str | None) -> Replayed:
    """Regenerate ``result``'s case and compare its image with the bundle's."""
    from PIL import Image

    from pytest_diffbench.run.case import comparable_image
    from pytest_diffbench.run.replay import ReplayRefused

    if config == "":
        return Replayed(result.nodeid, ReplayVerdict.NOTHING, f"the case ended before generating ({result.outcome.value})")
    if isinstance(config, str):
        return Replayed(result.nodeid, ReplayVerdict.NOT_REPLAYED, config)
    image_path = run_file(folder, folder.image(case_path(result.nodeid)))
    if not image_path.is_file():
        return Replayed(result.nodeid, ReplayVerdict.NOT_REPLAYED, "the bundle holds no image of it (it was made with "
                        "diffbench_bundle_images = failures and the case passed); make it with "
                        "--diffbench-bundle-images=all")
    try:
        regenerated = replayer.regenerate(config)
    except ReplayRefused as exc:
        return Replayed(result.nodeid, ReplayVerdict.NOT_REPLAYED, str(exc))
    image, _ = comparable_image(regenerated.image)
    recorded_bytes = image_path.read_bytes()
    try:
        with Image.open(io.BytesIO(recorded_bytes)) as opened:
            recorded = opened.convert(image.mode)
    except (OSError, ValueError) as exc:
        return Replayed(result.nodeid, ReplayVerdict.NOT_REPLAYED, f"{folder.relative(image_path)} cannot be read: {exc}")
    verdict, detail = _compare(image, recorded, recorded_bytes, result, config, device or str(config.get("device", "cpu")))
    return Replayed(result.nodeid, verdict, detail, regenerated.notes)


def _compare(image: "Image.Image", recorded: "Image.Image", recorded_bytes: bytes, result: CaseResult,
             config: dict[str, object], device: str) -> tuple[ReplayVerdict, str]:
    """The verdict of ``image`` (made again) against ``recorded`` (the bundle's, as PNG
    ``recorded_bytes``) under the case's recorded tolerances, and what it rests on."""
    if encode_png(image) == recorded_bytes:
        return ReplayVerdict.IDENTICAL, ""
    if image.size == recorded.size and image.tobytes() == recorded.tobytes():
        return ReplayVerdict.IDENTICAL, "the same pixels (another PNG encoding)"
    try:
        scores = score_images(image, recorded, prompt=str(config.get("prompt", "")), device=device, modes={},
                              tolerances=result.tolerances, frames=config_frames(config))
    except ImageSizeMismatch as exc:
        return ReplayVerdict.DIFFERENT, f"another size: {exc}"
    checks = [metric_check(metric.name, metric.direction, metric.unit, scores[metric.name].value,
                           scores[metric.name].status, result.tolerances.get(tolerance_name(metric)))
              for metric in REGISTRY if metric.name in scores]
    judged = [check for check in checks if check.passed is not None]
    text = ", ".join(check.violated() if not check.passed else
                     f"{check.name} {format_number(check.value or 0.0, check.limit)} {check.op} "
                     f"{format_number(check.limit or 0.0, check.value)}" for check in judged)
    if not judged:
        return ReplayVerdict.DIFFERENT, "other pixels, and the case gates no image metric to judge them by"
    if all(check.passed for check in judged):
        return ReplayVerdict.WITHIN, text
    return ReplayVerdict.DIFFERENT, text
