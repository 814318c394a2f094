"""What a reviewer opens: report.html, summary.md and the terminal table of a run with a failed-speed
case, a baseline timed on another device and a case that errored before it made an image; and
every link of report.html resolving where the page lies (the run folder, the unzipped bundle in
each ``diffbench_bundle_images`` mode)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import zipfile
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from pytest_diffbench.report.bundle import BUNDLE_IMAGES, build_bundle
from pytest_diffbench.spec.outcomes import Outcome
from pytest_diffbench.store.paths import case_path
from pytest_diffbench.testing import DiffbenchRun

OTHER = "Other CPU 9000"
SPEED_TEST = "@diffbench.tolerance(max_seconds=None, time_regression=0.5)"


class Links(HTMLParser):
    """Every ``href`` and ``src`` of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.links += [value for name, value in attrs if name in ("href", "src") and value is not None]


def rows_of(page: str) -> list[dict[str, Any]]:
    """The case table's rows, as the page's script receives them."""
    return json.loads(re.search(r'id="diffbench-rows">(.*?)</script>', page, re.S).group(1))


def links_of(page: str) -> list[str]:
    """Every link of the page: the static ones and those its script makes from the rows."""
    parser = Links()
    parser.feed(page)
    return parser.links + [row[key] for row in rows_of(page) for key in ("config", "grid", "image") if row[key]]


def dead_links(page: str, root: Path) -> list[str]:
    """The links of ``page`` (lying in ``root``) that are not a file inside ``root``."""
    top = root.resolve()
    dead = []
    for link in links_of(page):
        target = (root / link).resolve()
        if not target.is_file() or not target.is_relative_to(top):
            dead.append(link)
    return dead


@pytest.fixture(scope="module")
def run(shared_project) -> DiffbenchRun:
    """A run with two failed-speed cases (5x their baseline's time), a passing case whose baseline
    was timed on another device and a case that errored before generating. Made once for the
    module's tests, which only read what it left."""
    with shared_project() as project:
        project.write_tests(
            project.test("test_speed", sweep="seeds=0, steps=[2, 10]", decorators=[SPEED_TEST]),
            project.test("test_other_device", decorators=[SPEED_TEST]),
            project.test("test_broken", body='raise RuntimeError("no pipeline today")'),
        )
        project.fake(seconds_per_image=0.01)
        project.run(update="all")
        _, sidecar = project.baseline_pair("test_other_device")
        project.edit_sidecar(sidecar, environment={"device_name": OTHER}, measurement={"device_name": OTHER})
        project.fake(seconds_per_image=0.05)
        return project.run()


def test_report_shows_what_failed_the_baseline_timing_and_the_change_only_on_the_same_device(run) -> None:
    run.outcome.assert_outcomes(passed=1, failed=3)
    page = run.folder.report.read_text(encoding="utf-8")
    rows = {row["test"].split("::")[-1] + "[" + row["case"] + "]": row for row in rows_of(page)}
    slow = rows["test_speed[seed0-euler-2steps-cfg7.5]"]
    assert (slow["outcome"], slow["what_failed"], slow["baseline_seconds_per_image"], slow["change"]) == (
        "failed-speed", "slowdown +400% > +50%", "0.01", "+400%")
    assert slow["change_title"] == ""
    other = rows["test_other_device[seed0-euler-2steps-cfg7.5]"]
    assert (other["outcome"], other["what_failed"], other["baseline_seconds_per_image"]) == ("passed", "", "0.01")
    assert other["change"] == "—†" and other["change_title"].startswith(f"baseline timed on {OTHER}, this run on ")
    assert f'<p class="absent" id="footnote">† baseline timed on {OTHER}, not on this run' in page
    broken = rows["test_broken[seed0-euler-2steps-cfg7.5]"]
    assert broken["outcome"] == "error" and "no pipeline today" in broken["what_failed"]
    for key, title in (("what_failed", "what failed"), ("baseline_seconds_per_image", "baseline s/img"), ("change", "change")):
        assert f'<th data-key="{key}">{title}</th>' in page
    # The failing case's grid names the check that failed, with its value and tolerance.
    assert "failed-speed: test_gen.py::test_speed[seed0-euler-2steps-cfg7.5] · slowdown +400% &gt; +50%" in page


def test_rows_come_in_test_then_case_order(run) -> None:
    cases = [(row["test"].split("::")[-1], row["case"]) for row in rows_of(run.folder.report.read_text(encoding="utf-8"))]
    assert cases == [("test_broken", "seed0-euler-2steps-cfg7.5"), ("test_other_device", "seed0-euler-2steps-cfg7.5"),
                     ("test_speed", "seed0-euler-2steps-cfg7.5"), ("test_speed", "seed0-euler-10steps-cfg7.5")]


def test_summary_and_terminal_show_the_change_only_against_the_same_device(run) -> None:
    summary = run.folder.summary.read_text(encoding="utf-8")
    failing = summary.split("### Failing cases")[1].split("### Speed")[0]
    assert "| `test_speed[seed0-euler-2steps-cfg7.5]` | failed-speed | slowdown +400% > +50% |" in failing
    footnote = f"† baseline timed on {OTHER}, not on this run's device: no change shown"
    speed = summary.split("### Speed")[1]
    other_row = next(line for line in speed.splitlines() if "test_other_device" in line)
    assert "| —† |" in other_row and "%" not in other_row
    assert "| +400% |" in next(line for line in speed.splitlines() if "test_speed[seed0-euler-2steps" in line)
    assert speed.count(footnote) == 1
    terminal = run.outcome.stdout.str()
    other_line = next(line for line in terminal.splitlines() if line.startswith("test_other_device["))
    assert "—†" in other_line and "%" not in other_line
    assert terminal.count(footnote) == 1


def test_every_link_of_the_run_folders_report_resolves_in_the_run_folder(run) -> None:
    folder = run.folder
    broken = run.result("test_broken")
    assert not folder.config(case_path(broken.nodeid)).exists()  # it ended before it had a config
    assert dead_links(folder.report.read_text(encoding="utf-8"), folder.path) == []
    assert len(links_of(folder.report.read_text(encoding="utf-8"))) >= 4 * 2


@pytest.mark.parametrize("images", BUNDLE_IMAGES)
def test_every_link_of_the_bundles_report_resolves_in_the_unzipped_bundle(run, tmp_path: Path, images: str) -> None:
    folder = run.folder
    (tmp_path / "bundle.zip").write_bytes(build_bundle(folder, run.results, images))
    unzipped = tmp_path / "unzipped"
    with zipfile.ZipFile(tmp_path / "bundle.zip") as archive:
        archive.extractall(unzipped)
    page = (unzipped / "report.html").read_text(encoding="utf-8")
    assert dead_links(page, unzipped) == []
    assert links_of(page)  # the configs, grids and plot are in every bundle

    # Each output image the bundle leaves out is named, with where it lies, instead of linked.
    for row in rows_of(page):
        result = next(r for r in run.results if r.nodeid.endswith(f"[{row['case']}]") and r.test == row["test"])
        image = folder.relative(folder.image(case_path(result.nodeid)))
        if not (folder.path / image).is_file():  # the errored case made none
            assert (row["image"], row["image_absent"]) == ("", "")
        elif (unzipped / image).is_file():
            assert (row["image"], row["image_absent"]) == (image, "")
        else:
            assert row["image"] == "" and row["image_absent"] == f"not in the bundle: {image} in the run folder {folder.run_id}"
    linked = sum(1 for row in rows_of(page) if row["image"])
    assert linked == {"all": 3, "failures": 2, "none": 0}[images]  # 3 images made, 2 of them by failed-speed cases

    # The README lists what the bundle holds, nothing else, and says where the left-out images are.
    readme = (unzipped / "README.md").read_text(encoding="utf-8")
    listed = re.findall(r"^- `([^`]+)`:", readme, re.M)
    assert listed and all((unzipped / name).exists() for name in listed)
    assert ("images/" in listed) is (images != "none")
    assert ("Not in this bundle" in readme) is (images != "all")


def test_the_bundle_written_by_the_run_holds_the_bundles_own_report(run, tmp_path: Path) -> None:
    with zipfile.ZipFile(run.folder.bundle) as archive:
        archive.extractall(tmp_path)
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert dead_links(page, tmp_path) == []
    assert "not in the bundle: images/" in page
    assert run.folder.bundle.read_bytes() == build_bundle(run.folder, run.results, "failures")  # deterministic


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (.ci/run installs Debian's chromium)")
def test_the_page_shows_the_rows_by_test_then_case_with_the_device_caveat(run, tmp_path: Path) -> None:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
             f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom"]
    dom = subprocess.run([CHROMIUM, *flags, run.folder.report.as_uri()], capture_output=True, text=True, timeout=120).stdout
    shown = re.findall(r'<td class="case"><(?:a|span)[^>]*>([^<]*)<', dom)
    tests = re.findall(r'<td class="test">([^<]*)</td>', dom)
    assert [(t.split("::")[-1], c) for t, c in zip(tests, shown)] == [
        ("test_broken", "seed0-euler-2steps-cfg7.5"), ("test_other_device", "seed0-euler-2steps-cfg7.5"),
        ("test_speed", "seed0-euler-2steps-cfg7.5"), ("test_speed", "seed0-euler-10steps-cfg7.5")]
    assert re.search(f'<td class="change" title="baseline timed on {re.escape(OTHER)}, this run on [^"]+">—†</td>', dom)
