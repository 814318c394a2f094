"""Version-pinned baselines: one PNG and one JSON sidecar per case, under a pin key.

Layout: ``<baseline_dir>/<pin key>/<test file without .py>/<class>/<test>/<case id>.png`` and the
same path with ``.json``. The pin key (``cpu-float32``, ``cuda-float16`` by default) lets CPU CI
and GPU desks keep their baselines side by side. The sidecar
(:class:`~pytest_diffbench.spec.sidecar.Sidecar`) is written here and nowhere else.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from pytest_diffbench.spec.sidecar import Sidecar, SidecarError
from pytest_diffbench.store.files import atomic_write_bytes, atomic_write_text, sha256_bytes


class BaselineError(Exception):
    """A baseline exists but cannot be used (unreadable, incomplete, or its pair disagrees)."""


@dataclass(frozen=True)
class Baseline:
    image_path: Path
    sidecar_path: Path
    sidecar: Sidecar

    def load_image(self) -> Image.Image:
        """The baseline image as RGB. Raises BaselineError when the PNG cannot be decoded."""
        try:
            with Image.open(self.image_path) as image:
                return image.convert("RGB")
        except (OSError, ValueError) as exc:
            raise BaselineError(f"baseline image {self.image_path} cannot be read ({exc}); "
                                "rewrite it with --diffbench-update") from None


class BaselineStore:
    """Reads and writes the baselines of one pin key."""

    def __init__(self, root: Path, pin: str) -> None:
        self.root = Path(root)
        self.pin = pin

    def paths(self, case: str) -> tuple[Path, Path]:
        """(PNG, sidecar) of ``case`` (a :func:`~pytest_diffbench.store.paths.case_path`)."""
        base = self.root / self.pin / case
        return base.with_name(base.name + ".png"), base.with_name(base.name + ".json")

    def load(self, case: str) -> Baseline | None:
        """The case's baseline, ``None`` when neither file exists.

        Raises :class:`BaselineError` when only one of the pair exists, the sidecar is not valid
        JSON or lacks fields, or the PNG's SHA-256 is not the one the sidecar recorded.
        """
        image_path, sidecar_path = self.paths(case)
        if not image_path.exists() and not sidecar_path.exists():
            return None
        for have, lack in ((image_path, sidecar_path), (sidecar_path, image_path)):
            if have.exists() and not lack.exists():
                raise BaselineError(f"baseline {have} exists but {lack} does not; rewrite both with --diffbench-update")
        try:
            sidecar = Sidecar.from_json(sidecar_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, SidecarError) as exc:
            raise BaselineError(f"baseline sidecar {sidecar_path} {_fault(exc)}; rewrite it with --diffbench-update") from None
        try:
            actual = sha256_bytes(image_path.read_bytes())
        except OSError as exc:
            raise BaselineError(f"baseline image {image_path} cannot be read ({exc}); rewrite it with --diffbench-update") from None
        if actual != sidecar.image_sha256:
            raise BaselineError(
                f"baseline image {image_path} has SHA-256 {actual[:12]} but its sidecar records "
                f"{sidecar.image_sha256[:12]}; the pair was edited separately - rewrite it with --diffbench-update"
            )
        return Baseline(image_path, sidecar_path, sidecar)

    def write(self, case: str, png: bytes, sidecar: Sidecar, *, keep_replaced_in: Path) -> Baseline:
        """Write the pair atomically: the PNG first, then the sidecar that vouches for it.

        A pair being replaced is first copied to ``keep_replaced_in`` (the run folder's
        replaced-baselines/), so nothing a user had is lost, also outside version control.
        """
        image_path, sidecar_path = self.paths(case)
        for old in (image_path, sidecar_path):
            if old.is_file():
                atomic_write_bytes(Path(keep_replaced_in) / f"{case}{old.suffix}", old.read_bytes())
        sidecar = dataclasses.replace(sidecar, case=case, image_sha256=sha256_bytes(png))
        atomic_write_bytes(image_path, png)
        atomic_write_text(sidecar_path, sidecar.to_json())
        return Baseline(image_path, sidecar_path, sidecar)


def _fault(exc: Exception) -> str:
    if isinstance(exc, SidecarError):
        return str(exc)
    if isinstance(exc, UnicodeDecodeError):  # JSON is UTF-8 text
        return f"is not readable JSON ({exc})"
    return f"is not readable ({exc})"
