"""results.csv's ``baseline_device_name`` column: written, read back, and absent from a results.csv
written before it existed (then the report reads the device from what the judge recorded)."""

from __future__ import annotations

import csv

from pytest_diffbench.judge.result import columns
from pytest_diffbench.report.summary import NOT_COMPARABLE, baseline_device, speed_change, timing_mismatch_of
from pytest_diffbench.store.results import read_results, write_results


def test_the_column_follows_the_baselines_seconds_and_reads_back(tmp_path, make_result) -> None:
    known = columns()
    assert known.index("baseline_device_name") == known.index("baseline_seconds_per_image") + 1
    result = make_result(baseline_seconds_per_image=0.5, baseline_device_name="NVIDIA A100", time_check="off")
    path = write_results(tmp_path / "results.csv", [result.to_row()])
    (back,) = read_results(path)
    assert back.baseline_device_name == "NVIDIA A100"
    # Nothing but the column says where the baseline was timed: no time check ran, no env_diff.
    assert baseline_device(back) == "NVIDIA A100"
    assert timing_mismatch_of(back) == "baseline timed on NVIDIA A100, this run on Intel Xeon"
    assert speed_change(back) == NOT_COMPARABLE
    assert write_results(tmp_path / "again.csv", [back.to_row()]).read_bytes() == path.read_bytes()


def test_a_results_csv_without_the_column_still_reads(tmp_path, make_result) -> None:
    row = make_result(baseline_seconds_per_image=0.5, time_check="off",
                      env_diff="device_name: AMD EPYC -> Intel Xeon").to_row()
    del row["baseline_device_name"]
    path = tmp_path / "results.csv"
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(row))
        writer.writeheader()
        writer.writerow({key: "" if value is None else value for key, value in row.items()})
    (old,) = read_results(path)
    assert old.baseline_device_name == "" and "baseline_device_name" not in old.extra
    assert baseline_device(old) == "AMD EPYC"


def test_the_baseline_workers_column_reads_back_and_an_older_file_infers_it(tmp_path, make_result) -> None:
    from pytest_diffbench.report.summary import baseline_workers

    known = columns()
    assert known.index("baseline_workers") == known.index("baseline_device_name") + 1
    result = make_result(baseline_seconds_per_image=0.5, baseline_device_name="Intel Xeon", baseline_workers=1, workers=2,
                         time_check="off")
    (back,) = read_results(write_results(tmp_path / "results.csv", [result.to_row()]))
    assert back.baseline_workers == 1 and speed_change(back) == NOT_COMPARABLE
    assert timing_mismatch_of(back) == "baseline timed with 1 pytest worker(s), this run with 2"
    # Before the column: a check skipped for the worker count names it; otherwise as many as this run.
    older = back.with_changes(baseline_workers=None, time_check="baseline timed with 4 pytest worker(s), this run with 2")
    assert baseline_workers(older) == 4 and speed_change(older) == NOT_COMPARABLE
    assert baseline_workers(older.with_changes(time_check="passed")) == 2 and speed_change(older.with_changes(time_check="passed")) == "-20%"
