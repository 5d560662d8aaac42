"""The Hugging Face callback driven with transformers' real TrainingArguments, TrainerState and
TrainerControl (they import without torch): the hooks a Trainer calls, in its order."""

import json
import warnings

import pytest
from transformers import TrainerControl, TrainerState, TrainingArguments  # scripts/test-python.sh installs it

from conftest import eventually  # noqa: E402
from wattprint.integrations.transformers import WattprintCallback, add_co2_to_model_card  # noqa: E402

J_PER_KWH = 3.6e6


def args(tmp_path):
    return TrainingArguments(output_dir=str(tmp_path / "out"), max_steps=3, report_to=[], use_cpu=True)


def cb_for(host, **kw):
    return WattprintCallback(env=host.env(), interval=0.1, intensity=100.0, pue=1.0, no_embodied=True, **kw)


def test_a_trainer_run_with_stages_logs_and_the_model_card(host, tmp_path):
    a, state, control = args(tmp_path), TrainerState(), TrainerControl()
    state.max_steps = 3
    cb = cb_for(host, project="hf")
    cb.on_train_begin(a, state, control)
    assert cb.tracker.measuring
    for step in range(1, 4):
        host.add_j(3.0)
        eventually("the sampler reads the step", lambda: cb.tracker.energy() * J_PER_KWH >= 3.0 * step * 0.999)
        state.global_step = step
        cb.on_step_end(a, state, control)
        logs = {"loss": 1.0 / step}
        cb.on_log(a, state, control, logs=logs)
        assert logs["energy_kwh"] > 0 and logs["emissions_kg"] > 0 and logs["loss"] == 1.0 / step
        if step == 2:  # an evaluation inside training
            cb.on_prediction_step(a, state, control)
            host.add_j(1.5)
            eventually("eval energy", lambda: cb.tracker.energy() * J_PER_KWH >= 7.5 * 0.999)
            cb.on_evaluate(a, state, control, metrics={})
    assert not control.should_training_stop
    cb.on_train_end(a, state, control)
    run = cb.run
    assert run.status == "completed" and not cb.tracker.measuring
    assert set(run.stages) == {"training", "evaluation"}
    assert sum(run.stages.values()) == pytest.approx(run.energy_kwh, rel=0.05)
    assert run.work["units"] == 3 and run.work["unit"] == "steps"
    block = cb.co2_eq_emissions()
    assert block["source"] == "wattprint" and block["emissions"] == pytest.approx(run.emissions_kg * 1000)
    card = tmp_path / "README.md"
    card.write_text("---\nlicense: apache-2.0\n---\n\n# my model\n")
    add_co2_to_model_card(str(card), block)
    import yaml

    text = card.read_text()
    meta = yaml.safe_load(text.split("---")[1])
    assert meta["license"] == "apache-2.0" and meta["co2_eq_emissions"]["source"] == "wattprint"
    assert text.rstrip().endswith("# my model")


def test_only_the_local_main_process_measures(host, tmp_path):
    a, state, control = args(tmp_path), TrainerState(), TrainerControl()
    state.is_local_process_zero = False
    cb = cb_for(host)
    cb.on_train_begin(a, state, control)
    cb.on_step_end(a, state, control)
    cb.on_log(a, state, control, logs={})
    cb.on_train_end(a, state, control)
    assert cb.tracker is None and cb.run is None
    assert not (host.home / "wattprint.db").exists()


def test_a_budget_stops_training_cleanly(host, tmp_path):
    a, state, control = args(tmp_path), TrainerState(), TrainerControl()
    state.max_steps = 1000
    cb = cb_for(host, budget_kwh=2.0 / J_PER_KWH)
    cb.on_train_begin(a, state, control)
    step = 0
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        while not control.should_training_stop:
            assert step < 1000, "the budget never stopped training"
            step += 1
            host.add_j(1.0)
            eventually("read", lambda: cb.tracker._native.live()[1] * J_PER_KWH >= step * 0.999
                       or cb.tracker._native.stop_requested())
            state.global_step = step
            cb.on_step_end(a, state, control)
    assert any("budget was reached" in str(w.message) for w in seen)
    cb.on_train_end(a, state, control)
    assert cb.run.status == "stopped_by_budget"
    assert json.loads(cb.run.record)["stopped"]["limit"] == "budget_kwh"

