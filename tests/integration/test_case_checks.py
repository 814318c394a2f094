"""A case whose generate() call the sweep or the pipeline cannot honour fails with one line, is an
error row, and writes no baseline, also with --diffbench-update (issue 9, item 7)."""

from __future__ import annotations

import pytest

from pytest_diffbench.spec.outcomes import Outcome

CASE = "seed0-euler-2steps-cfg7.5"

REFUSED = {
    "test_steps_keyword": ("seeds=0, steps=2", 'diffbench.generate("a red cube", num_inference_steps=30)',
                           "generate() got num_inference_steps, which diffbench sets for each case; use steps instead"),
    "test_output_type": ("seeds=0, steps=2", 'diffbench.generate("a red cube", output_type="latent")',
                         "generate() got output_type, which diffbench sets for each case"),
    "test_swept_width": ("seeds=0, steps=2, width=64", 'diffbench.generate("a red cube", width=128, height=64)',
                         "generate() got width, which the sweep sets for this case; set it in the sweep only"),
    "test_lora_scale": ("seeds=0, steps=2, lora_scale=0.8", 'diffbench.generate("a red cube")',
                        "sweep axis 'lora_scale' needs a LoRA loaded in the pipeline"),
    "test_nan_keyword": ("seeds=0, steps=2", 'diffbench.generate("a red cube", eta=float("nan"))',
                         "generate() keyword.eta: nan is not a finite number"),
}


def test_refused_generate_calls_are_one_line_error_rows(project) -> None:
    project.write_tests(*(project.test(name, sweep=sweep, body=body) for name, (sweep, body, _) in REFUSED.items()))
    run = project.run(update="all")
    run.outcome.assert_outcomes(failed=len(REFUSED))
    text = project.text(run.outcome)
    rows = {result.short_id.split("[")[0]: result for result in run.results}
    assert sorted(rows) == sorted(REFUSED)
    for name, (_, _, fragment) in REFUSED.items():
        row = rows[name]
        assert row.outcome is Outcome.ERROR and fragment in row.message, name
        assert f"::{name}[{row.case_id}]: {fragment}" in text, name
    assert "Traceback" not in text and "case.py" not in text  # no traceback into the plugin
    assert not project.baselines.exists()
