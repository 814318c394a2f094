"""The config says everything that changes the image (issue 11, item 4), as a user meets it with a
FakePipeline: a change of the scheduler's settings, of the pipeline's own flags or of its LoRA
adapters (weight, fusing, file) makes the baseline stale, the message naming the field key by key
although no pixel changed; a pipeline that takes no negative prompt records None and refuses one;
a LoRA scale on a fused LoRA is refused instead of baselining identical images under other hashes."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_diffbench.spec.outcomes import Outcome

ADAPTER = {"components": ["unet"], "digest": "ab" * 32, "active": True, "weights": {"unet": 1.0}, "enabled": True,
           "fused": False}
#: The pipeline of the baselines: a LoRA, a scheduler off its defaults and a pipeline flag.
BASE: dict[str, Any] = {"scheduler": {"class": "EulerDiscreteScheduler", "timestep_spacing": "trailing"},
                        "pipeline_config": {"force_zeros_for_empty_prompt": True}, "adapters": {"tiny": ADAPTER}}


#: One change of the pipeline per run, and what its stale message shows.
CHANGES: list[tuple[dict[str, Any], str]] = [
    ({"scheduler": {"class": "EulerDiscreteScheduler", "timestep_spacing": "leading"}},
     "scheduler.timestep_spacing: 'trailing' -> 'leading'"),
    ({"pipeline_config": {"force_zeros_for_empty_prompt": False}},
     "pipeline_config.force_zeros_for_empty_prompt: True -> False"),
    ({"adapters": {"tiny": {**ADAPTER, "weights": {"unet": 0.5}}}}, "adapters.tiny.weights.unet: 1.0 -> 0.5"),
    ({"adapters": {"tiny": {**ADAPTER, "fused": True}}}, "adapters.tiny.fused: False -> True"),
    ({"adapters": {"tiny": {**ADAPTER, "digest": "cd" * 32}}}, "adapters.tiny.digest"),
]


def test_a_changed_pipeline_setting_makes_the_baseline_stale(project) -> None:
    project.write_tests(project.test("test_case", sweep="seeds=0, steps=2"))
    project.fake(**BASE)
    project.run(update="all").outcome.assert_outcomes(passed=1)
    project.run().outcome.assert_outcomes(passed=1)  # the same pipeline: a clean rerun
    for change, shown in CHANGES:  # each run against the same baseline (no update)
        project.fake(**{**BASE, **change})
        run = project.run()
        run.outcome.assert_outcomes(failed=1)
        (result,) = run.results
        assert result.outcome is Outcome.STALE_BASELINE, shown
        assert shown in project.text(run.outcome)


def test_a_pipeline_without_negative_prompt_records_none_and_refuses_one(project) -> None:
    project.fake(missing_keywords=["negative_prompt"])  # as LatentConsistencyModelPipeline
    project.write_tests(project.test("test_plain", sweep="seeds=0, steps=2"),
                        project.test("test_negative", sweep="seeds=0, steps=2",
                                     body='diffbench.generate("a red cube", negative_prompt="blurry")'))
    run = project.run(update="all")
    run.outcome.assert_outcomes(passed=1, failed=1)
    rows = {result.short_id.split("[")[0]: result for result in run.results}
    assert rows["test_plain"].outcome is Outcome.PASSED and rows["test_plain"].setting("negative_prompt") is None
    refused = rows["test_negative"]
    assert refused.outcome is Outcome.ERROR
    assert ("generate(negative_prompt='blurry') would change nothing but the config: FakePipeline.__call__ takes no "
            "negative_prompt; leave negative_prompt out") in refused.message
    assert "Traceback" not in project.text(run.outcome)


def test_a_lora_scale_on_a_fused_lora_is_refused(project) -> None:
    project.fake(adapters={"tiny": {**ADAPTER, "fused": True}})
    project.write_tests(project.test("test_scales", sweep="seeds=0, steps=2, lora_scale=[0.5, 1.0]"))
    run = project.run(update="all")
    run.outcome.assert_outcomes(failed=2)
    for result in run.results:
        assert result.outcome is Outcome.ERROR
        assert "sweep axis 'lora_scale' changes nothing here: every active LoRA adapter is fused" in result.message
    assert not project.baselines.exists()


def test_a_lora_scale_on_an_unfused_lora_gives_one_baseline_per_scale(project) -> None:
    project.fake(adapters={"tiny": ADAPTER})
    project.write_tests(project.test("test_scales", sweep="seeds=0, steps=2, lora_scale=[0.5, 1.0]"))
    run = project.run(update="all")
    run.outcome.assert_outcomes(passed=2)
    assert len({result.config_hash for result in run.results}) == 2
    for result in run.results:
        assert result.setting("adapters") == {"tiny": ADAPTER}
