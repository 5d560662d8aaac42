"""Hugging Face ``Trainer`` callback: the run measured from ``on_train_begin`` to
``on_train_end``, training and evaluation as stages, energy and emissions in the Trainer's
logs, a budget stopping training cleanly, and the model card's ``co2_eq_emissions`` block.

    from wattprint.integrations.transformers import WattprintCallback
    trainer = Trainer(..., callbacks=[WattprintCallback(project="llm", location="FR")])

Only the local main process measures (``state.is_local_process_zero``): on 8 ranks, one does.

Logging to W&B / TensorBoard: the Trainer calls callbacks in the order they were added, and its
reporting callbacks are added first, so in transformers >= 5 they have already sent the logs
when this callback adds ``energy_kwh`` and ``emissions_kg``. Put this callback first::

    trainer.callback_handler.callbacks.insert(0, WattprintCallback(...))

The figures then travel with every log line to every reporter.
"""

import atexit
import os
import warnings
from typing import Any, Dict, Optional

from transformers import TrainerCallback

from ..tracker import Run, Tracker, WattprintWarning


class WattprintCallback(TrainerCallback):
    """Measure a ``Trainer`` run with wattprint (Tracker options as keyword arguments)."""

    def __init__(self, training_type: str = "fine-tuning", **tracker_options: Any):
        tracker_options.setdefault("on_limit", "raise")
        tracker_options.setdefault("ranks", "all")  # the Trainer's own rank decides (below)
        self._options = tracker_options
        self.training_type = training_type
        self.tracker: Optional[Tracker] = None
        self.run: Optional[Run] = None
        self._stage: Optional[str] = None
        self._registered = False

    # life ------------------------------------------------------------------------------------

    def on_train_begin(self, args, state, control, **kwargs):
        if not getattr(state, "is_local_process_zero", True):
            return
        if self.tracker is not None and self.tracker.measuring:
            self._finish(failed=True)  # a previous train() that never ended (notebooks)
        self.tracker = Tracker(**self._options).start()
        self.run = None
        self._enter("training")
        if not self._registered:
            atexit.register(self._at_exit)
            self._registered = True

    def on_train_end(self, args, state, control, **kwargs):
        self._finish(failed=False)

    def _at_exit(self) -> None:
        # training raised and the process is ending: the run is saved as failed
        if self.tracker is not None and self.tracker.measuring:
            self._finish(failed=True)

    def _finish(self, failed: bool) -> None:
        t = self.tracker
        if t is None or not t.measuring:
            return
        self._leave()
        self.run = t.stop(failed=failed)

    # stages ----------------------------------------------------------------------------------

    def _enter(self, stage: str) -> None:
        t = self.tracker
        if t is None or not t.measuring or self._stage == stage:
            return
        self._leave()
        n = t._native
        if n is not None:
            t._do_sync()
            n.begin_window(stage, "stage")
            self._stage = stage

    def _leave(self) -> None:
        t = self.tracker
        if self._stage is not None and t is not None and t._native is not None:
            t._do_sync()
            t._native.end_window(self._stage)
        self._stage = None

    def on_prediction_step(self, args, state, control, **kwargs):
        self._enter("evaluation")

    def on_evaluate(self, args, state, control, **kwargs):
        # evaluation inside train() goes back to training; a lone evaluate() ends its stage
        training = self.tracker is not None and self.tracker.measuring and state.max_steps > 0 \
            and state.global_step < state.max_steps
        if training:
            self._enter("training")
        else:
            self._leave()

    # steps, logs, limits ---------------------------------------------------------------------

    def on_step_end(self, args, state, control, **kwargs):
        t = self.tracker
        if t is None or not t.measuring:
            return
        t.add_work(1, unit="steps") if not t._native.stop_requested() else None
        if state.max_steps and state.max_steps > 0:
            t._native.progress(float(min(state.global_step, state.max_steps)), float(state.max_steps))
        if t._native.stop_requested():
            control.should_training_stop = True
            warnings.warn("wattprint: a cap or budget was reached; training stops after this step",
                          WattprintWarning, stacklevel=2)

    def on_log(self, args, state, control, logs: Optional[Dict[str, Any]] = None, **kwargs):
        t = self.tracker
        if logs is None or t is None or not t.measuring:
            return
        live = t._native.live()
        logs["energy_kwh"] = live[1]
        logs["emissions_kg"] = live[2]

    # model card ------------------------------------------------------------------------------

    def co2_eq_emissions(self) -> Optional[Dict[str, Any]]:
        """The model card's ``co2_eq_emissions`` block (grams) for the finished run."""
        if self.run is None:
            return None
        rec = self.run.to_dict()
        hw = [d.get("name") for d in rec.get("devices", []) if d.get("kind") == "gpu"] \
            or [rec.get("host", {}).get("cpu_model")]
        return {
            "emissions": rec["emissions_kg"]["total"] * 1000.0,
            "source": "wattprint",
            "training_type": self.training_type,
            "geographical_location": rec.get("location", {}).get("name") or rec.get("location", {}).get("code"),
            "hardware_used": ", ".join(sorted({h for h in hw if h})),
        }

    def write_model_card(self, output_dir: str) -> bool:
        """Add ``co2_eq_emissions`` to ``output_dir/README.md``'s metadata (after
        ``trainer.create_model_card()``; ``push_to_hub`` uploads the folder)."""
        block = self.co2_eq_emissions()
        path = os.path.join(output_dir, "README.md")
        if block is None or not os.path.exists(path):
            return False
        add_co2_to_model_card(path, block)
        return True


def add_co2_to_model_card(path: str, block: Dict[str, Any]) -> None:
    """Set ``co2_eq_emissions`` in the YAML front matter of the model card at ``path``."""
    import yaml  # a dependency of transformers (via huggingface_hub)

    with open(path, encoding="utf-8") as f:
        text = f.read()
    meta: Dict[str, Any] = {}
    body = text
    if text.startswith("---\n"):
        end = text.find("\n---", 4)
        if end != -1:
            meta = yaml.safe_load(text[4:end]) or {}
            body = text[end + 4:].lstrip("\n")
    meta["co2_eq_emissions"] = block
    with open(path, "w", encoding="utf-8") as f:
        f.write("---\n" + yaml.safe_dump(meta, sort_keys=False) + "---\n\n" + body)
