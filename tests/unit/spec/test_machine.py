"""MachineInfo: the comparison of a baseline's environment with the run's, and its projections."""

from __future__ import annotations

from pytest_diffbench.spec.machine import RESULT_FIELDS, MachineInfo, format_diff

BASE = {"device_name": "A100", "driver": "550", "cuda": "12.4", "torch": "2.3", "diffusers": "0.30",
        "transformers": "4.40", "python": "3.10", "machine": "x86_64"}


def test_diff_lists_only_the_compared_fields_that_changed():
    assert MachineInfo.from_mapping(BASE).diff(dict(BASE)) == {}
    current = MachineInfo.from_mapping({**BASE, "torch": "2.4", "driver": "560", "python": "3.11", "machine": "arm64"})
    assert current.diff(BASE) == {"torch": ("2.3", "2.4"), "driver": ("550", "560")}
    assert format_diff(current.diff(BASE)) == "driver: 550 -> 560; torch: 2.3 -> 2.4"


def test_diff_treats_missing_as_empty():
    assert MachineInfo(driver="").diff({}) == {}
    assert MachineInfo().diff({"cuda": "12.4"}) == {"cuda": ("12.4", "")}
    assert MachineInfo().diff({"cuda": None}) == {}


def test_unknown_fields_go_to_extra_and_back_into_the_sidecar_form():
    info = MachineInfo.from_mapping({**BASE, "cluster": "rack-7", "gpus": 8})
    assert info.extra == {"cluster": "rack-7", "gpus": "8"}
    assert info.as_dict()["cluster"] == "rack-7"
    assert MachineInfo.from_mapping(info.as_dict()) == info


def test_result_fields_are_the_results_columns():
    fields = MachineInfo.from_mapping(BASE).result_fields()
    assert list(fields) == list(RESULT_FIELDS)
    assert fields["device_name"] == "A100" and fields["python"] == "3.10"
