"""results.csv's ``baseline_device_name`` column: written, read back, and absent from a results.csv
written before it existed (then the report reads the device from what the judge recorded)."""

from __future__ import annotations

import csv

from pytest_diffbench.judge.result import columns
from pytest_diffbench.report.summary import OTHER_DEVICE, baseline_device, other_device, speed_change
from pytest_diffbench.store.results import read_results, write_results


def test_the_column_follows_the_baselines_seconds_and_reads_back(tmp_path, make_result) -> None:
    known = columns()
    assert known.index("baseline_device_name") == known.index("baseline_seconds_per_image") + 1
    result = make_result(baseline_seconds_per_image=0.5, baseline_device_name="NVIDIA A100", time_check="off")
    path = write_results(tmp_path / "results.csv", [result.to_row()])
    (back,) = read_results(path)
    assert back.baseline_device_name == "NVIDIA A100"
    # Nothing but the column says where the baseline was timed: no time check ran, no env_diff.
    assert baseline_device(back) == other_device(back) == "NVIDIA A100"
    assert speed_change(back) == OTHER_DEVICE
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
