"""``pytest --help`` says what each diffbench option does in the words its results use."""

from __future__ import annotations


def test_strict_env_help_names_what_it_compares_and_its_outcome(pytester) -> None:
    help_text = " ".join(pytester.runpytest("--help").stdout.str().split())
    start = help_text.index("--diffbench-strict-env")
    entry = help_text[start:start + 300]
    assert "device incl. CPU model, driver, CUDA, library versions" in entry
    assert "outcome env-mismatch" in entry
