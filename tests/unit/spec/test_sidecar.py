"""Golden values: every committed example baseline still re-hashes, parses and matches its PNG.

The sidecars under baselines/ were written by earlier versions of the plugin; if the canonical
JSON, the hash or the sidecar schema changes, these files stop matching and this test says which.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from PIL import Image

from pytest_diffbench.spec.config import FrozenConfig, config_hash
from pytest_diffbench.spec.machine import MachineInfo
from pytest_diffbench.spec.measurement import Measurement
from pytest_diffbench.spec.sidecar import Sidecar, SidecarError
from pytest_diffbench.store.baselines import pixels_sha256

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
    with Image.open(png) as image:  # format 2: the digest of the decoded pixels vouches for the image
        assert sidecar.format == 2 and sidecar.pixels_sha256 == pixels_sha256(image)
    assert sidecar.case == path.relative_to(BASELINES / "cpu-float32").with_suffix("").as_posix()


def _candidate(**changes) -> str:
    """A run folder's copy of a sidecar (no image digests) as JSON, with ``changes`` to its keys."""
    config = {"seed": 1, "prompt": "a red cube"}
    data = {"format": 2, "case": "t/test_a/seed1", "config": config, "config_hash": config_hash(config),
            "environment": {"torch": "2.4"},
            "measurement": {"seconds_per_image": 0.5, "peak_vram_mb": None, "device_name": "cpu", "workers": 1}}
    data.update(changes)
    return json.dumps(data)


@pytest.mark.parametrize("text, fault", [
    ("{not json", "not readable JSON"),
    ("[]", "is a JSON array, expected a JSON object"),
    ('"config"', "is a JSON string, expected a JSON object"),
    ("[" * 100000, "not readable JSON"),
    ('{"config": {}}', "lacks format, case, config_hash, environment, measurement"),
    (_candidate(config=[]), "has config of type array"),
    (_candidate(config_hash=123), "has config_hash of type number"),
    (_candidate(config="a string"), "has config of type string"),
    (_candidate(measurement=[]), "has measurement of type array"),
    (_candidate(measurement={"seconds_per_image": "fast", "peak_vram_mb": None, "device_name": "", "workers": 1}),
     'measurement.seconds_per_image = "fast"'),
    (_candidate(measurement={"seconds_per_image": 1.0}), "lacks measurement.device_name, measurement.peak_vram_mb, measurement.workers"),
    (_candidate(config_hash="0" * 64), "has config_hash 000000000000, but its config hashes to"),
    (_candidate(format=0), "has format 0; this pytest-diffbench reads formats 1 and 2"),
    (_candidate(format=1.0), "has format 1.0"),
])
def test_broken_sidecars_name_the_fault(text: str, fault: str):
    with pytest.raises(SidecarError) as excinfo:
        Sidecar.from_json(text, require_image_sha256=False)
    assert fault in str(excinfo.value) and "\n" not in str(excinfo.value)


def test_a_baseline_sidecar_needs_the_digests_of_its_format():
    with pytest.raises(SidecarError, match="lacks image_sha256, pixels_sha256"):
        Sidecar.from_json(_candidate())
    with pytest.raises(SidecarError, match="lacks image_sha256$"):
        Sidecar.from_json(_candidate(format=1))
    assert Sidecar.from_json(_candidate(format=1, image_sha256="a" * 64)).format == 1


def test_a_run_folder_copy_needs_no_image_hash():
    sidecar = Sidecar.from_json(_candidate(), require_image_sha256=False)
    assert sidecar.image_sha256 == "" and "image_sha256" not in sidecar.to_dict()
    assert sidecar.config == {"seed": 1, "prompt": "a red cube"} and sidecar.workers == 1


GOLDEN = Path(__file__).with_name("golden_sidecar_format2.json")


def test_a_written_sidecar_is_byte_stable_against_its_golden_file():
    """Format 2 as :meth:`Sidecar.to_json` writes it: same record, same bytes, on every machine."""
    config = {"cfg": 7.5, "prompt": "a red cube", "seed": 0, "steps": 2}
    sidecar = Sidecar(case="test_gen/test_case/seed0-euler-2steps-cfg7.5", config=config,
                      config_hash=config_hash(config), environment=MachineInfo(device_name="cpu", torch="2.4.0"),
                      measurement=Measurement(0.25, None), device_name="cpu", workers=2,
                      image_sha256="a" * 64, pixels_sha256="b" * 64)
    assert sidecar.to_json() == GOLDEN.read_text(encoding="utf-8")
    assert Sidecar.from_json(GOLDEN.read_text(encoding="utf-8")) == sidecar
