"""PyTorch Lightning callback: the fit measured from ``on_fit_start`` to ``on_fit_end`` (or
``on_exception``), training/validation/test/predict as stages, energy and emissions logged
each epoch, a budget stopping the fit cleanly (``trainer.should_stop``).

    from wattprint.integrations.lightning import WattprintCallback
    trainer = L.Trainer(callbacks=[WattprintCallback(project="vision")])

Only global rank 0 of each node measures (``trainer.local_rank == 0``).
"""

from typing import Any, Optional

try:  # Lightning 2.x
    from lightning.pytorch.callbacks import Callback
except ImportError:  # the older package name
    from pytorch_lightning.callbacks import Callback  # type: ignore

from ..tracker import Run, Tracker


class WattprintCallback(Callback):
    def __init__(self, **tracker_options: Any):
        super().__init__()
        tracker_options.setdefault("on_limit", "raise")
        tracker_options.setdefault("ranks", "all")
        self._options = tracker_options
        self.tracker: Optional[Tracker] = None
        self.run: Optional[Run] = None
        self._stage: Optional[str] = None

    def _enter(self, stage: str) -> None:
        t = self.tracker
        if t is None or t._native is None or self._stage == stage:
            return
        self._leave()
        t._do_sync()
        t._native.begin_window(stage, "stage")
        self._stage = stage

    def _leave(self) -> None:
        t = self.tracker
        if self._stage is not None and t is not None and t._native is not None:
            t._do_sync()
            t._native.end_window(self._stage)
        self._stage = None

    def _stop(self, failed: bool) -> None:
        if self.tracker is not None and self.tracker.measuring:
            self._leave()
            self.run = self.tracker.stop(failed=failed)

    def on_fit_start(self, trainer, pl_module):
        if getattr(trainer, "local_rank", 0) != 0:
            return
        self.tracker = Tracker(**self._options).start()

    def on_train_epoch_start(self, trainer, pl_module):
        self._enter("training")

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        t = self.tracker
        if t is None or t._native is None:
            return
        t._native.add_work(1.0, "batches")
        if t._native.stop_requested():
            trainer.should_stop = True

    def on_train_epoch_end(self, trainer, pl_module):
        t = self.tracker
        if t is None or t._native is None:
            return
        _, kwh, kg, _ = t._native.live()
        pl_module.log_dict({"energy_kwh": kwh, "emissions_kg": kg}, rank_zero_only=True)

    def on_validation_start(self, trainer, pl_module):
        self._enter("evaluation")

    def on_validation_end(self, trainer, pl_module):
        self._leave()

    def on_exception(self, trainer, pl_module, exception):
        self._stop(failed=True)

    def on_fit_end(self, trainer, pl_module):
        self._stop(failed=False)
