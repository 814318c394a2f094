"""Version-pinned baselines: one PNG and one JSON sidecar per case, under a pin key.

Layout: ``<baseline_dir>/<pin key>/<test file without .py>/<class>/<test>/<case id>.png`` and
the same path with ``.json``. The pin key (``cpu-float32``, ``cuda-float16`` by default) lets CPU
CI and GPU desks keep their baselines side by side. The sidecar holds the frozen config and its
hash, the environment, the measurement and the PNG's SHA-256, which ties the pair together.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from PIL import Image

from pytest_diffbench.files import atomic_write_bytes, atomic_write_text, encode_png, sha256_bytes

SIDECAR_FORMAT = 1
#: Folder of a run folder that keeps the baseline pairs an update or accept replaced.
REPLACED_DIR = "replaced-baselines"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class BaselineError(Exception):
    """A baseline exists but cannot be used (unreadable, incomplete, or its pair disagrees)."""


def safe_segment(text: str) -> str:
    """One file-name segment made only of letters, digits, ``.``, ``_`` and ``-``."""
    return _UNSAFE.sub("_", text).strip("_.") or "_"


def case_path(nodeid: str) -> str:
    """Relative path of a test case's files, from its pytest node id.

    ``examples/test_a.py::TestX::test_b[seed0-euler-20steps-cfg7.5]`` becomes
    ``examples/test_a/TestX/test_b/seed0-euler-20steps-cfg7.5``; a test without
    parameters gets the case name ``default``.
    """
    file_part, *names = nodeid.split("::")
    if file_part.endswith(".py"):
        file_part = file_part[: -len(".py")]
    last = names[-1] if names else "test"
    match = re.fullmatch(r"(.*?)\[(.*)\]", last, flags=re.DOTALL)
    function, param = (match.group(1), match.group(2)) if match else (last, "default")
    segments = [*file_part.split("/"), *names[:-1], function, param]
    return "/".join(safe_segment(s) for s in segments)


def pin_key(template: str, fields: Mapping[str, Any]) -> str:
    """Fill the pin template (e.g. ``{device}-{dtype}``) and make it one safe path segment."""
    return safe_segment(template.format(**{key: safe_segment(str(value)) for key, value in fields.items()}))


@dataclass(frozen=True)
class Baseline:
    image_path: Path
    sidecar_path: Path
    sidecar: Mapping[str, Any]

    @property
    def config(self) -> Mapping[str, Any]:
        return self.sidecar["config"]

    @property
    def config_hash(self) -> str:
        return self.sidecar["config_hash"]

    @property
    def environment(self) -> Mapping[str, Any]:
        return self.sidecar.get("environment", {})

    @property
    def measurement(self) -> Mapping[str, Any]:
        return self.sidecar.get("measurement", {})

    def load_image(self) -> Image.Image:
        with Image.open(self.image_path) as image:
            return image.convert("RGB")


class BaselineStore:
    """Reads and writes the baselines of one pin key."""

    def __init__(self, root: Path, pin: str) -> None:
        self.root = Path(root)
        self.pin = pin

    def paths(self, case: str) -> tuple[Path, Path]:
        base = self.root / self.pin / case
        return base.with_name(base.name + ".png"), base.with_name(base.name + ".json")

    def load(self, case: str) -> Baseline | None:
        """The case's baseline, ``None`` when neither file exists.

        Raises :class:`BaselineError` when only one of the pair exists, the sidecar is not
        valid JSON or lacks keys, or the PNG's SHA-256 is not the one the sidecar recorded.
        """
        image_path, sidecar_path = self.paths(case)
        if not image_path.exists() and not sidecar_path.exists():
            return None
        for have, lack in ((image_path, sidecar_path), (sidecar_path, image_path)):
            if have.exists() and not lack.exists():
                raise BaselineError(f"baseline {have} exists but {lack} does not; rewrite both with --diffbench-update")
        try:
            sidecar = json.loads(sidecar_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise BaselineError(f"baseline sidecar {sidecar_path} is not readable JSON ({exc}); rewrite it with --diffbench-update") from None
        if not isinstance(sidecar, dict):
            raise BaselineError(f"baseline sidecar {sidecar_path} is not a JSON object; rewrite it with --diffbench-update")
        missing = [key for key in ("config", "config_hash", "image_sha256") if key not in sidecar]
        if missing:
            raise BaselineError(f"baseline sidecar {sidecar_path} lacks {', '.join(missing)}; rewrite it with --diffbench-update")
        actual = sha256_bytes(image_path.read_bytes())
        if actual != sidecar["image_sha256"]:
            raise BaselineError(
                f"baseline image {image_path} has SHA-256 {actual[:12]} but its sidecar records "
                f"{sidecar['image_sha256'][:12]}; the pair was edited separately - rewrite it with --diffbench-update"
            )
        return Baseline(image_path, sidecar_path, sidecar)

    def write(self, case: str, image: Image.Image, *, config: Mapping[str, Any], config_hash: str,
              environment: Mapping[str, Any], measurement: Mapping[str, Any], keep_replaced_in: Path) -> Baseline:
        """Write the pair atomically: the PNG first, then the sidecar that vouches for it.

        A pair being replaced is first copied to ``<keep_replaced_in>/replaced-baselines/`` (a
        run folder), so nothing a user had is lost, also outside version control.
        """
        image_path, sidecar_path = self.paths(case)
        for old in (image_path, sidecar_path):
            if old.exists():
                atomic_write_bytes(Path(keep_replaced_in) / REPLACED_DIR / f"{case}{old.suffix}", old.read_bytes())
        png = encode_png(image)
        sidecar = {
            "format": SIDECAR_FORMAT,
            "case": case,
            "config": dict(config),
            "config_hash": config_hash,
            "image_sha256": sha256_bytes(png),
            "environment": dict(environment),
            "measurement": dict(measurement),
        }
        atomic_write_bytes(image_path, png)
        atomic_write_text(sidecar_path, json.dumps(sidecar, indent=2, sort_keys=True, ensure_ascii=True) + "\n")
        return Baseline(image_path, sidecar_path, sidecar)
