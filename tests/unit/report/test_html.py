"""report.html: escaping, structure, relative links; and, where Chromium is installed, the
page as a browser runs it (no console errors, the table filled by its script, a screenshot)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from pytest_diffbench.report.html import FILTERS, render_report
from pytest_diffbench.store.run_folder import RunFolder

EVIL = '</script><script>alert("x")</script> & <b>bold</b>'


@pytest.fixture
def results(make_result):
    return [make_result(0, "Euler", 20, test="t/test_a.py::test_a", config={"prompt": EVIL}, seconds=0.4, device_name="cpu",
                        scores={"ssim": 1.0, "psnr": None, "lpips": None}),
            make_result(0, "DDIM", 10, test="t/test_a.py::test_a", outcome="failed-quality", config={"prompt": EVIL}, seconds=0.2,
                        device_name="cpu", scores={"ssim": 0.5, "psnr": None, "lpips": None})]


@pytest.fixture
def make_run(tmp_path: Path, results):
    def build() -> Path:
        folder = RunFolder(tmp_path / "run")
        grid = folder.case_grid("t/test_a/test_a/seed0-ddim-10steps-cfg7.5")
        grid.parent.mkdir(parents=True)
        Image.new("RGB", (32, 16), (200, 0, 0)).save(grid)
        output = folder.image("t/test_a/test_a/seed0-euler-20steps-cfg7.5")
        output.parent.mkdir(parents=True)
        Image.new("RGB", (16, 16), (0, 0, 200)).save(output)
        config = folder.config("t/test_a/test_a/seed0-euler-20steps-cfg7.5")
        config.parent.mkdir(parents=True)
        config.write_text("{}", encoding="utf-8")
        page = render_report(folder, results, {"command": EVIL})
        folder.report.write_text(page, encoding="utf-8")
        return folder.path
    return build


def test_user_strings_are_escaped_and_survive_as_data(make_run):
    page = (make_run() / "report.html").read_text()
    assert page.count("<script") == 2  # the JSON block and the page's own script
    assert "<b>bold</b>" not in page and "&lt;b&gt;bold&lt;/b&gt;" in page
    data = re.search(r'<script type="application/json" id="diffbench-rows">(.*?)</script>', page, re.S).group(1)
    rows = json.loads(data)
    assert [row["prompt"] for row in rows] == [EVIL, EVIL]


def test_counts_filters_and_relative_links(make_run):
    page = (make_run() / "report.html").read_text()
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
    assert [row["ssim"] for row in rows] == ["0.5", "1"]


def test_every_registered_metric_has_a_column_and_the_plot_is_linked_when_present(tmp_path, results):
    folder = RunFolder(tmp_path / "run")
    folder.path.mkdir()
    page = render_report(folder, results, {})
    for key, title in (("ssim", "SSIM"), ("psnr", "PSNR"), ("lpips", "LPIPS")):
        assert f'<th data-key="{key}">{title}</th>' in page
    assert "plot.png" not in page
    folder.plot.write_bytes(b"png")
    assert '<img src="plot.png"' in render_report(folder, results, {})


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--enable-logging=stderr", "--v=0"]


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (.ci/run installs Debian's chromium)")
def test_page_runs_in_a_browser_without_console_errors(tmp_path: Path, make_run):
    run_dir = make_run()
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


def test_a_linked_grid_or_image_is_not_linked(make_run, results, tmp_path: Path) -> None:
    folder = RunFolder(make_run())
    grid = folder.case_grid("t/test_a/test_a/seed0-ddim-10steps-cfg7.5")
    os.rename(grid, tmp_path / "outside.png")
    grid.symlink_to(tmp_path / "outside.png")
    os.rename(folder.path / "images", tmp_path / "images")
    (folder.path / "images").symlink_to(tmp_path / "images", target_is_directory=True)
    page = render_report(folder, results, {})
    rows = json.loads(re.search(r'id="diffbench-rows">(.*?)</script>', page, re.S).group(1))
    assert [(row["grid"], row["image"]) for row in rows] == [("", ""), ("", "")]
    assert "<img src=" not in page


def test_cases_of_two_parametrize_values_are_two_cases_on_the_page(tmp_path: Path, make_result) -> None:
    results = [make_result(0, "Euler", 20, test="t/test_a.py::test_a").with_changes(
        nodeid=f"t/test_a.py::test_a[seed0-euler-20steps-cfg7.5-{prompt}]") for prompt in ("a red cube", "a blue sphere")]
    page = render_report(RunFolder(tmp_path / "run"), results, {})
    rows = json.loads(re.search(r'id="diffbench-rows">(.*?)</script>', page, re.S).group(1))
    assert [row["case"] for row in rows] == ["seed0-euler-20steps-cfg7.5-a blue sphere", "seed0-euler-20steps-cfg7.5-a red cube"]
