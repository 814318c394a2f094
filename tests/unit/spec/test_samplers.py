"""Sampler names: resolving, slugs, and the diffusers schedulers they build."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_diffbench.spec.samplers import (
    SamplerSpec,
    UnknownSamplerError,
    build_scheduler,
    known_sampler_names,
    resolve_sampler,
    sampler_slug,
)

REPO_ROOT = Path(__file__).resolve().parents[3]

EXPECTED = {
    "Euler": ("EulerDiscreteScheduler", {}),
    "Euler a": ("EulerAncestralDiscreteScheduler", {}),
    "Heun": ("HeunDiscreteScheduler", {}),
    "LMS": ("LMSDiscreteScheduler", {}),
    "LMS Karras": ("LMSDiscreteScheduler", {"use_karras_sigmas": True}),
    "DDIM": ("DDIMScheduler", {}),
    "PNDM": ("PNDMScheduler", {"skip_prk_steps": True}),
    "UniPC": ("UniPCMultistepScheduler", {}),
    "DEIS": ("DEISMultistepScheduler", {}),
    "DPM2": ("KDPM2DiscreteScheduler", {}),
    "DPM2 Karras": ("KDPM2DiscreteScheduler", {"use_karras_sigmas": True}),
    "DPM2 a": ("KDPM2AncestralDiscreteScheduler", {}),
    "DPM2 a Karras": ("KDPM2AncestralDiscreteScheduler", {"use_karras_sigmas": True}),
    "DPM++ 2M": ("DPMSolverMultistepScheduler", {"use_karras_sigmas": False, "algorithm_type": "dpmsolver++"}),
    "DPM++ 2M Karras": ("DPMSolverMultistepScheduler", {"use_karras_sigmas": True, "algorithm_type": "dpmsolver++"}),
    "DPM++ 2M SDE": ("DPMSolverMultistepScheduler", {"use_karras_sigmas": False, "algorithm_type": "sde-dpmsolver++"}),
    "DPM++ 2M SDE Karras": (
        "DPMSolverMultistepScheduler",
        {"use_karras_sigmas": True, "algorithm_type": "sde-dpmsolver++"},
    ),
    "DPM++ SDE": ("DPMSolverSDEScheduler", {"use_karras_sigmas": False, "noise_sampler_seed": 7}),
    "DPM++ SDE Karras": ("DPMSolverSDEScheduler", {"use_karras_sigmas": True, "noise_sampler_seed": 7}),
    "LCM": ("LCMScheduler", {}),
    "TCD": ("TCDScheduler", {}),
}


@pytest.fixture(scope="module")
def scheduler_config():
    from pytest_diffbench.run.pipelines import build_random_pipeline

    return build_random_pipeline().scheduler.config


def test_table_covers_the_expected_samplers_in_order():
    assert known_sampler_names() == list(EXPECTED)


@pytest.mark.parametrize("name", known_sampler_names())
def test_sampler_resolves_and_builds(name, scheduler_config):
    class_name, expected_config = EXPECTED[name]
    spec = resolve_sampler(name)
    assert spec == resolve_sampler(name.upper())
    assert (spec.name, spec.class_name) == (name, class_name)

    scheduler = build_scheduler(scheduler_config, name, seed=7)

    assert type(scheduler).__name__ == class_name
    for key, value in expected_config.items():
        assert scheduler.config[key] == value, key
    # Model properties come from the pipeline's own scheduler config.
    assert scheduler.config.beta_schedule == "scaled_linear"
    assert scheduler.config.beta_start == pytest.approx(0.00085)
    assert scheduler.config.beta_end == pytest.approx(0.012)
    scheduler.set_timesteps(10)
    assert scheduler.num_inference_steps == 10
    assert len(scheduler.timesteps) >= 10


def test_spec_kwargs_are_sorted_pairs():
    spec = resolve_sampler("DPM++ 2M SDE Karras")
    assert spec.kwargs == (("algorithm_type", "sde-dpmsolver++"), ("use_karras_sigmas", True))
    assert spec.kwargs_dict() == {"algorithm_type": "sde-dpmsolver++", "use_karras_sigmas": True}


def test_display_names_are_case_insensitive():
    assert resolve_sampler("euler A").name == "Euler a"
    assert resolve_sampler("dpm++ 2m karras").name == "DPM++ 2M Karras"
    assert resolve_sampler("  DDIM ").name == "DDIM"


def test_scheduler_class_names_resolve_without_kwargs():
    assert resolve_sampler("EulerDiscreteScheduler") == SamplerSpec(
        "EulerDiscreteScheduler", "EulerDiscreteScheduler", ()
    )
    assert resolve_sampler("lcmscheduler").class_name == "LCMScheduler"
    assert resolve_sampler("FlowMatchEulerDiscreteScheduler").kwargs == ()


def test_scheduler_class_name_builds_that_class(scheduler_config):
    scheduler = build_scheduler(scheduler_config, "dpmsolvermultistepscheduler")
    assert type(scheduler).__name__ == "DPMSolverMultistepScheduler"
    assert scheduler.config.use_karras_sigmas is False


def test_unlisted_class_name_is_accepted_but_build_explains(scheduler_config):
    assert resolve_sampler("NoSuchThingScheduler").class_name == "NoSuchThingScheduler"
    with pytest.raises(UnknownSamplerError, match=r"diffusers .* has no scheduler class 'NoSuchThingScheduler'"):
        build_scheduler(scheduler_config, "NoSuchThingScheduler")


def test_unknown_name_lists_every_known_name():
    with pytest.raises(UnknownSamplerError) as excinfo:
        resolve_sampler("Eular a")
    message = str(excinfo.value)
    assert "'Eular a'" in message
    for name in known_sampler_names():
        assert name in message
    assert "scheduler class names" in message
    assert isinstance(excinfo.value, ValueError)


def test_slugs_are_readable_and_unique():
    slugs = [sampler_slug(name) for name in known_sampler_names()]
    assert len(set(slugs)) == len(slugs)
    assert all(re.fullmatch(r"[a-z0-9]+(_[a-z0-9]+)*", slug) for slug in slugs)
    assert sampler_slug("Euler a") == "euler_a"
    assert sampler_slug("DPM++ 2M Karras") == "dpmpp_2m_karras"
    assert sampler_slug("dpm++ 2m karras") == "dpmpp_2m_karras"
    assert sampler_slug("EulerDiscreteScheduler") == "eulerdiscretescheduler"


def _swap(config, *names):
    scheduler = None
    for name in names:
        scheduler = build_scheduler(config, name)
        config = scheduler.config
    return scheduler


def test_swap_back_from_karras_resets_to_plain_sigmas(scheduler_config):
    karras = _swap(scheduler_config, "Euler", "DPM++ 2M Karras")
    plain = _swap(scheduler_config, "Euler", "DPM++ 2M Karras", "DPM++ 2M")
    assert karras.config.use_karras_sigmas is True
    assert plain.config.use_karras_sigmas is False
    assert plain.config.algorithm_type == "dpmsolver++"

    karras.set_timesteps(10)
    plain.set_timesteps(10)
    fresh = build_scheduler(scheduler_config, "DPM++ 2M")
    fresh.set_timesteps(10)
    assert plain.sigmas.tolist() == fresh.sigmas.tolist()
    assert plain.sigmas.tolist() != karras.sigmas.tolist()


def test_swap_resets_algorithm_and_solver_type(scheduler_config):
    after_sde = _swap(scheduler_config, "DPM++ 2M SDE Karras", "DPM++ 2M")
    assert (after_sde.config.algorithm_type, after_sde.config.use_karras_sigmas) == ("dpmsolver++", False)

    after_deis = _swap(scheduler_config, "DEIS", "DPM++ 2M")
    assert after_deis.config.algorithm_type == "dpmsolver++"
    assert after_deis.config.solver_type == "midpoint"

    by_class = _swap(scheduler_config, "LMS Karras", "LMSDiscreteScheduler")
    assert by_class.config.use_karras_sigmas is False


def test_swap_keeps_model_properties(scheduler_config):
    scheduler = _swap(scheduler_config, "DPM++ 2M Karras", "PNDM", "Euler a", "Euler")
    assert type(scheduler).__name__ == "EulerDiscreteScheduler"
    assert scheduler.config.steps_offset == 1
    assert scheduler.config.beta_schedule == "scaled_linear"
    assert scheduler.config.use_karras_sigmas is False


def test_import_does_not_load_torch_or_diffusers():
    code = (
        "import sys\n"
        "import pytest_diffbench.spec.samplers as s\n"
        "assert s.resolve_sampler('euler a').class_name == 'EulerAncestralDiscreteScheduler'\n"
        "print(sorted(m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])},
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == "[]"


# --- families: which scheduler a name means for each kind of model (no diffusers needed) ---

from pytest_diffbench.spec.samplers import (  # noqa: E402
    SamplerFamilyError,
    SchedulerFamily,
    family_sampler_names,
    fit_sampler,
    resolve_for_family,
    scheduler_family,
)

FLOW_CONFIG = {"num_train_timesteps": 1000, "shift": 3.0, "use_dynamic_shifting": False, "base_shift": 0.5}


@pytest.mark.parametrize(("config", "class_name", "family"), [
    ({}, "FlowMatchEulerDiscreteScheduler", SchedulerFamily.FLOW),
    ({"_class_name": "FlowMatchHeunDiscreteScheduler"}, None, SchedulerFamily.FLOW),
    (FLOW_CONFIG, None, SchedulerFamily.FLOW),  # built in code: no class name in the config
    ({"beta_start": 0.0001, "prediction_type": "flow_prediction", "use_flow_sigmas": True}, "UniPCMultistepScheduler",
     SchedulerFamily.FLOW),
    ({"beta_start": 0.00085, "original_inference_steps": 50}, "LCMScheduler", SchedulerFamily.CONSISTENCY),
    ({"beta_start": 0.00085, "original_inference_steps": 50}, None, SchedulerFamily.CONSISTENCY),
    ({"_class_name": "TCDScheduler"}, None, SchedulerFamily.CONSISTENCY),
    ({"beta_start": 0.00085, "prediction_type": "epsilon"}, "EulerDiscreteScheduler", SchedulerFamily.NOISE),
    ({"beta_start": 0.00085, "prediction_type": "v_prediction"}, "DDIMScheduler", SchedulerFamily.NOISE),
])
def test_the_family_comes_from_the_scheduler_class_and_config(config, class_name, family):
    assert scheduler_family(config, class_name) is family


@pytest.mark.parametrize(("name", "class_name", "kwargs"), [
    ("Euler", "FlowMatchEulerDiscreteScheduler", {}),
    ("euler", "FlowMatchEulerDiscreteScheduler", {}),
    ("Heun", "FlowMatchHeunDiscreteScheduler", {}),
    ("UniPC", "UniPCMultistepScheduler", {"use_flow_sigmas": True, "prediction_type": "flow_prediction"}),
    ("DPM++ 2M", "DPMSolverMultistepScheduler", {"use_flow_sigmas": True, "prediction_type": "flow_prediction"}),
    ("DEIS", "DEISMultistepScheduler", {"use_flow_sigmas": True, "prediction_type": "flow_prediction"}),
    ("UniPCMultistepScheduler", "UniPCMultistepScheduler",
     {"use_flow_sigmas": True, "prediction_type": "flow_prediction"}),
    ("FlowMatchEulerDiscreteScheduler", "FlowMatchEulerDiscreteScheduler", {}),
])
def test_flow_matching_gets_the_flow_variant_of_a_name(name, class_name, kwargs):
    spec = fit_sampler(name, SchedulerFamily.FLOW)
    assert not isinstance(spec, str), spec
    assert (spec.class_name, spec.kwargs_dict()) == (class_name, kwargs)


@pytest.mark.parametrize(("name", "why"), [
    ("DDIM", "DDIM (DDIMScheduler) has no flow-matching variant"),
    ("LMS", "LMS (LMSDiscreteScheduler) has no flow-matching variant"),
    ("PNDM", "PNDM (PNDMScheduler) has no flow-matching variant"),
    ("DPM++ 2M Karras", "Karras sigmas are a noise-prediction schedule"),
    ("LMS Karras", "Karras sigmas are a noise-prediction schedule"),
    ("Euler a", "Euler a (EulerAncestralDiscreteScheduler) has no flow-matching variant"),
    ("DPM++ SDE", "DPM++ SDE (DPMSolverSDEScheduler) has no flow-matching variant"),
    ("DPM++ 2M SDE", "DPM++ 2M SDE (DPMSolverMultistepScheduler) has no flow-matching variant"),
    ("LCM", "LCM (LCMScheduler) samples noise-prediction consistency models; for a flow-matching consistency model "
            "sweep its own scheduler's class name (e.g. FlowMatchLCMScheduler)"),
    ("EulerDiscreteScheduler", "EulerDiscreteScheduler (EulerDiscreteScheduler) has no flow-matching variant"),
])
def test_flow_matching_refuses_a_name_without_a_flow_variant_in_one_line(name, why):
    with pytest.raises(SamplerFamilyError) as excinfo:
        resolve_for_family(name, SchedulerFamily.FLOW, "FlowMatchEulerDiscreteScheduler")
    message = str(excinfo.value)
    assert "\n" not in message
    assert message.startswith(f"sampler {name!r} does not work with this pipeline's flow-matching scheduler "
                              "(FlowMatchEulerDiscreteScheduler): ")
    assert why in message
    assert message.endswith("Samplers that work with it: Euler, Heun, UniPC, DEIS, DPM++ 2M")
    assert isinstance(excinfo.value, ValueError)


def test_a_consistency_model_takes_only_consistency_samplers():
    assert fit_sampler("LCM", SchedulerFamily.CONSISTENCY).class_name == "LCMScheduler"
    assert fit_sampler("tcd", SchedulerFamily.CONSISTENCY).class_name == "TCDScheduler"
    assert fit_sampler("LCMScheduler", SchedulerFamily.CONSISTENCY).class_name == "LCMScheduler"
    assert family_sampler_names(SchedulerFamily.CONSISTENCY) == ["LCM", "TCD"]
    # The default sampler must not run Euler maths on an LCM model.
    with pytest.raises(SamplerFamilyError, match=r"^sampler 'Euler' does not work with this pipeline's consistency "
                       r"\(LCM / TCD\) scheduler \(LCMScheduler\): .*EulerDiscreteScheduler maths.*samplers=\"LCM\".*"
                       r"Samplers that work with it: LCM, TCD$"):
        resolve_for_family("Euler", SchedulerFamily.CONSISTENCY, "LCMScheduler")


def test_a_noise_prediction_model_refuses_flow_matching_classes_only():
    assert [fit_sampler(name, SchedulerFamily.NOISE) for name in known_sampler_names()] == \
        [resolve_sampler(name) for name in known_sampler_names()]
    assert fit_sampler("LCM", SchedulerFamily.NOISE).class_name == "LCMScheduler"  # LCM-LoRA on SD / SDXL
    with pytest.raises(SamplerFamilyError, match=r"FlowMatchEulerDiscreteScheduler is a flow-matching scheduler and "
                       r"this model predicts noise\. Samplers that work with it: Euler, Euler a, "):
        resolve_for_family("FlowMatchEulerDiscreteScheduler", SchedulerFamily.NOISE, "EulerDiscreteScheduler")


def test_stochastic_samplers_are_marked():
    stochastic = {name for name in known_sampler_names() if resolve_sampler(name).stochastic}
    assert stochastic == {"Euler a", "DPM2 a", "DPM2 a Karras", "DPM++ 2M SDE", "DPM++ 2M SDE Karras", "DPM++ SDE",
                          "DPM++ SDE Karras", "LCM", "TCD"}
    assert resolve_sampler("DDPMScheduler").stochastic
    assert not resolve_sampler("DDIMScheduler").stochastic


def test_dpm_sde_names_are_the_seeded_brownian_tree_sampler(scheduler_config):
    # The deterministic singlestep solver the names meant before stays available by its class name.
    assert resolve_sampler("dpmsolversinglestepscheduler").class_name == "DPMSolverSinglestepScheduler"
    scheduler = build_scheduler(scheduler_config, "DPM++ SDE", seed=1234)
    assert type(scheduler).__name__ == "DPMSolverSDEScheduler"
    assert scheduler.config.noise_sampler_seed == 1234
    with pytest.raises(ValueError, match=r"sampler 'DPM\+\+ SDE' \(DPMSolverSDEScheduler\) needs the case's seed"):
        build_scheduler(scheduler_config, "DPM++ SDE")


def test_flow_shift_and_choices_carry_over_to_the_flow_variant():
    from diffusers import FlowMatchEulerDiscreteScheduler

    own = FlowMatchEulerDiscreteScheduler(shift=3.0, stochastic_sampling=True, use_karras_sigmas=False)
    unipc = build_scheduler(own.config, "UniPC", class_name="FlowMatchEulerDiscreteScheduler")
    assert type(unipc).__name__ == "UniPCMultistepScheduler"
    assert (unipc.config.flow_shift, unipc.config.use_flow_sigmas, unipc.config.prediction_type) == \
        (3.0, True, "flow_prediction")
    euler = build_scheduler(own.config, "Euler")
    assert (euler.config.shift, euler.config.stochastic_sampling) == (3.0, False)  # a sampler choice is not inherited
    with pytest.raises(SamplerFamilyError, match="sampler 'DDIM' does not work"):
        build_scheduler(own.config, "DDIM")


def test_keys_carried_from_the_pipelines_config_do_not_warn(capfd):
    from diffusers import FlowMatchEulerDiscreteScheduler

    scheduler = build_scheduler(FlowMatchEulerDiscreteScheduler(shift=3.0).config, "UniPC")
    assert scheduler.config.shift == 3.0  # carried: the pipeline may read it
    assert "not expected" not in capfd.readouterr().err
