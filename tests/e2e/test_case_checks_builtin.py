"""On a real diffusers pipeline (the built-in diffbench-tiny-random), what the pipeline cannot honour
fails with diffbench's one line before diffusers runs: a size off its step, a keyword its call only
swallows through ``**kwargs``, a misspelt one, and lora_scale with no LoRA loaded (issue 9, item 7);
an attention scale with no LoRA, a clip_skip past the text encoder's layers, and keywords that
change nothing in the image (issue 9, P8)."""

from __future__ import annotations

import pytest

from pytest_diffbench.spec.outcomes import Outcome

CHECKS = {
    "test_width_60": ("seeds=0, steps=2, width=[60], height=64", 'diffbench.generate("a red cube")',
                      "width=60 is not a multiple of 8, which this pipeline needs (StableDiffusionPipeline); use e.g. width=56"),
    "test_swallowed_keyword": ("seeds=0, steps=2", 'diffbench.generate("a red cube", callback_steps=1)',
                               "generate() keyword 'callback_steps' is not a keyword of StableDiffusionPipeline.__call__"),
    "test_unknown_axis": ("seeds=0, steps=2, strenght=[0.5]", 'diffbench.generate("a red cube")',
                          "sweep axis 'strenght' is not a keyword of StableDiffusionPipeline.__call__"),
    "test_lora_scale": ("seeds=0, steps=2, lora_scale=[0.0, 0.8]", 'diffbench.generate("a red cube")',
                        "sweep axis 'lora_scale' needs a LoRA loaded in the pipeline"),
    # issue 9 P8: what diffusers failed on deep inside, or took and ignored
    "test_attention_scale": ("seeds=0, steps=2, cross_attention_kwargs=[{'scale': 0.8}]", 'diffbench.generate("a red cube")',
                             "cross_attention_kwargs={'scale': ...} needs a LoRA loaded in the pipeline"),
    "test_clip_skip": ("seeds=0, steps=2", 'diffbench.generate("a red cube", clip_skip=50)',
                       "clip_skip=50 is not valid for this pipeline: its text encoder has"),
    "test_return_dict": ("seeds=0, steps=2", 'diffbench.generate("a red cube", return_dict=False)',
                         "generate() got return_dict, which diffbench sets for each case"),
    "test_latents": ("seeds=0, steps=2", 'diffbench.generate("a red cube", latents=None)',
                     "generate() got latents, which diffbench sets for each case"),
}


@pytest.mark.subprocess
@pytest.mark.model
def test_what_a_diffusers_pipeline_cannot_honour_is_one_line(project) -> None:
    project.use_builtin_pipeline()
    project.write_tests(*(project.test(name, sweep=sweep, body=body) for name, (sweep, body, _) in CHECKS.items()),
                        project.test("test_fine", sweep="seeds=0, steps=2, width=[72], height=64, eta=[0.0]"))
    run = project.run("--diffbench-model=diffbench-tiny-random", update="all", subprocess=True)
    run.outcome.assert_outcomes(failed=len(CHECKS) + 1, passed=1)
    text = project.text(run.outcome)
    rows: dict[str, list] = {}
    for result in run.results:
        rows.setdefault(result.short_id.split("[")[0], []).append(result)
    for name, (_, _, fragment) in CHECKS.items():
        for row in rows[name]:
            assert row.outcome is Outcome.ERROR and fragment in row.message, (name, row.message)
        assert fragment in text, name
    (fine,) = rows["test_fine"]
    assert fine.outcome is Outcome.PASSED and (fine.setting("width"), fine.setting("height")) == (72, 64)
    assert "Traceback" not in text and "diffusers/" not in text and "have to be divisible by" not in text
