"""report.html: escaping, structure, relative links; and, where Chromium is installed, the
page as a browser runs it (no console errors, the table filled by its script, a screenshot)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from pytest_diffbench.html_report import FILTERS, render_report

EVIL = '</script><script>alert("x")</script> & <b>bold</b>'


def records() -> list[dict]:
    return [
        {"nodeid": "t/test_a.py::test_a[seed0-euler-20steps-cfg7.5]", "case_id": "seed0-euler-20steps-cfg7.5", "test": "t/test_a.py::test_a",
         "outcome": "passed", "sampler": "Euler", "steps": 20, "cfg": 7.5, "seed": 0, "ssim": 1.0, "prompt": EVIL,
         "seconds_per_image": 0.4, "device_name": "cpu"},
        {"nodeid": "t/test_a.py::test_a[seed0-ddim-10steps-cfg7.5]", "case_id": "seed0-ddim-10steps-cfg7.5", "test": "t/test_a.py::test_a",
         "outcome": "failed-quality", "sampler": "DDIM", "steps": 10, "cfg": 7.5, "seed": 0, "ssim": 0.5, "prompt": EVIL,
         "seconds_per_image": 0.2, "device_name": "cpu"},
    ]


def make_run(tmp_path: Path) -> Path:
    run_dir = tmp_path / "run"
    grid = run_dir / "grids" / "cases" / "t" / "test_a" / "test_a" / "seed0-ddim-10steps-cfg7.5.png"
    grid.parent.mkdir(parents=True)
    Image.new("RGB", (32, 16), (200, 0, 0)).save(grid)
    output = run_dir / "images" / "t" / "test_a" / "test_a" / "seed0-euler-20steps-cfg7.5.png"
    output.parent.mkdir(parents=True)
    Image.new("RGB", (16, 16), (0, 0, 200)).save(output)
    page = render_report(run_dir, "run-1", records(), {"command": EVIL})
    (run_dir / "report.html").write_text(page, encoding="utf-8")
    return run_dir


def test_user_strings_are_escaped_and_survive_as_data(tmp_path: Path):
    page = (make_run(tmp_path) / "report.html").read_text()
    assert page.count("<script") == 2  # the JSON block and the page's own script
    assert "<b>bold</b>" not in page and "&lt;b&gt;bold&lt;/b&gt;" in page
    data = re.search(r'<script type="application/json" id="diffbench-rows">(.*?)</script>', page, re.S).group(1)
    rows = json.loads(data)
    assert [row["prompt"] for row in rows] == [EVIL, EVIL]


def test_counts_filters_and_relative_links(tmp_path: Path):
    page = (make_run(tmp_path) / "report.html").read_text()
    assert '<span class="passed">1 passed</span>' in page and '<span class="failed">1 failed-quality</span>' in page
    for key in FILTERS:
        assert f'<select name="{key}">' in page
    assert '<option value="DDIM">DDIM</option>' in page
    links = re.findall(r'(?:src|href)="([^"]*)"', page)
    assert links and all(not link.startswith(("/", "http", "file:")) for link in links)
    assert 'src="grids/cases/t/test_a/test_a/seed0-ddim-10steps-cfg7.5.png"' in page
    rows = json.loads(re.search(r'id="diffbench-rows">(.*?)</script>', page, re.S).group(1))
    # rows in node-id order: ddim before euler
    assert [row["grid"] for row in rows] == ["grids/cases/t/test_a/test_a/seed0-ddim-10steps-cfg7.5.png", ""]
    assert rows[1]["config"] == "configs/t/test_a/test_a/seed0-euler-20steps-cfg7.5.json"
    assert [row["image"] for row in rows] == ["", "images/t/test_a/test_a/seed0-euler-20steps-cfg7.5.png"]


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--enable-logging=stderr", "--v=0"]


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (.ci/run installs Debian's chromium)")
def test_page_runs_in_a_browser_without_console_errors(tmp_path: Path):
    run_dir = make_run(tmp_path)
    url = (run_dir / "report.html").as_uri()
    profile = tmp_path / "profile"
    dom = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--dump-dom", url],
                         capture_output=True, text=True, timeout=120)
    assert "2 of 2 cases shown" in dom.stdout  # the script ran and filled the table
    assert dom.stdout.count('<tr class="') == 2 and '<tr class="failed">' in dom.stdout
    console_errors = [line for line in dom.stderr.splitlines() if "CONSOLE" in line and ("Uncaught" in line or "Error" in line)]
    assert console_errors == []

    shot = tmp_path / "shot.png"
    subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", f"--screenshot={shot}", "--window-size=1000,700", url],
                   capture_output=True, timeout=120)
    with Image.open(shot) as image:
        pixels = image.convert("RGB")
        assert pixels.size == (1000, 700)
        # The outcome counts are drawn near the top: the green 'passed' and red 'failed' badges.
        top = [pixels.getpixel((x, y)) for x in range(0, 600, 2) for y in range(30, 140, 2)]
        assert (215, 245, 215) in top and (248, 211, 211) in top
