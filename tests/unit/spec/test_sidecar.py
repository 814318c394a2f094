"""Golden values: every committed example baseline still re-hashes, parses and matches its PNG.

The sidecars under baselines/ were written by earlier versions of the plugin; if the canonical
JSON, the hash or the sidecar schema changes, these files stop matching and this test says which.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from pytest_diffbench.spec.config import FrozenConfig, config_hash
from pytest_diffbench.spec.sidecar import Sidecar, SidecarError

BASELINES = Path(__file__).resolve().parents[3] / "baselines"
SIDECARS = sorted(BASELINES.rglob("*.json"))


def test_the_example_baselines_are_committed():
    assert len(SIDECARS) >= 10, f"expected the example baselines under {BASELINES}"


@pytest.mark.parametrize("path", SIDECARS, ids=lambda p: p.relative_to(BASELINES).as_posix())
def test_committed_sidecar_rehashes_parses_and_matches_its_png(path: Path):
    text = path.read_text(encoding="utf-8")
    data = json.loads(text)
    assert config_hash(data["config"]) == data["config_hash"]
    assert FrozenConfig(**data["config"]).hash == data["config_hash"]
    sidecar = Sidecar.from_json(text)
    assert sidecar.config_hash == data["config_hash"]
    assert sidecar.to_json() == text  # the one JSON form: parsing and writing back gives the same bytes
    png = path.with_suffix(".png")
    assert hashlib.sha256(png.read_bytes()).hexdigest() == sidecar.image_sha256
    assert sidecar.case == path.relative_to(BASELINES / "cpu-float32").with_suffix("").as_posix()


@pytest.mark.parametrize("text, fault", [
    ("{not json", "not readable JSON"),
    ("[]", "not a JSON object"),
    ('{"config": {}}', "lacks config_hash, image_sha256"),
    ('{"config": [], "config_hash": "x", "image_sha256": "y"}', "has config of type list"),
    ('{"config": {}, "config_hash": "x", "image_sha256": "y", "measurement": {"seconds_per_image": "fast"}}',
     "measurement.seconds_per_image"),
])
def test_broken_sidecars_name_the_fault(text: str, fault: str):
    with pytest.raises(SidecarError, match=fault.replace(".", r"\.")):
        Sidecar.from_json(text)


def test_a_run_folder_copy_needs_no_image_hash():
    sidecar = Sidecar.from_json('{"config": {"seed": 1}, "config_hash": "h"}', require_image_sha256=False)
    assert sidecar.image_sha256 == "" and "image_sha256" not in sidecar.to_dict()
