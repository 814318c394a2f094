"""What the bundle carries for ``diffbench replay``: the input images of inputs/ (listed in its
README beside the replay command), as deterministic as the rest of the bundle."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

from PIL import Image

from pytest_diffbench.report.bundle import build_bundle, bundle_files
from pytest_diffbench.store.files import encode_png
from pytest_diffbench.store.paths import case_path
from pytest_diffbench.store.results import write_results
from pytest_diffbench.store.run_folder import RunFolder

RUN_ID = "20261128T000000Z-abcdef"


def test_the_bundle_carries_the_input_images_and_says_how_to_replay_it(tmp_path: Path, make_result) -> None:
    result = make_result(0, test="t/test_a.py::test_a").with_changes(nodeid="t/test_a.py::test_a[seed0]")
    folder = RunFolder(tmp_path / ".diffbench" / "runs" / RUN_ID)
    folder.write_case(case_path(result.nodeid), encode_png(Image.new("RGB", (8, 8), "red")), json.dumps({}))
    folder.write_inputs({"0123456789abcdef.png": Image.new("L", (8, 8), 128)})
    write_results(folder.results, [result.to_row()])
    files = bundle_files(folder, [result], "all")
    assert "inputs/0123456789abcdef.png" in files
    data = build_bundle(folder, [result], "all")
    assert build_bundle(folder, [result], "all") == data  # still the same bytes every time
    archive = zipfile.ZipFile(io.BytesIO(data))
    assert archive.read("inputs/0123456789abcdef.png") == (folder.inputs / "0123456789abcdef.png").read_bytes()
    readme = archive.read("README.md").decode()
    assert "- `inputs/`: `<digest>.png`: the input images of the cases" in readme
    assert f"    diffbench replay diffbench-{RUN_ID}.zip" in readme
