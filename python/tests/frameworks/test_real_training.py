"""Real training loops with the callbacks (scripts/test-frameworks.sh; needs torch)."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent.parent))
torch = pytest.importorskip("torch")

from conftest import FakeHost  # noqa: E402


@pytest.fixture
def host(tmp_path):
    return FakeHost(tmp_path)


def test_a_real_trainer_three_steps(host, tmp_path):
    from transformers import GPT2Config, GPT2LMHeadModel, Trainer, TrainingArguments

    from wattprint.integrations.transformers import WattprintCallback

    model = GPT2LMHeadModel(GPT2Config(n_layer=1, n_head=2, n_embd=32, vocab_size=64, n_positions=16))
    data = [{"input_ids": torch.randint(0, 64, (16,)), "labels": torch.randint(0, 64, (16,))} for _ in range(16)]
    from transformers import TrainerCallback

    class Spy(TrainerCallback):
        """Runs after ours: sees the logs the way a reporting callback placed after it would."""

        def __init__(self):
            self.seen = []

        def on_log(self, args, state, control, logs=None, **kwargs):
            self.seen.append(dict(logs or {}))

    cb = WattprintCallback(env=host.env(), interval=0.1, project="hf-real")
    spy = Spy()
    args = TrainingArguments(output_dir=str(tmp_path / "out"), max_steps=3, per_device_train_batch_size=4,
                             report_to=[], use_cpu=True, logging_steps=1, eval_strategy="steps", eval_steps=2)
    trainer = Trainer(model=model, args=args, train_dataset=data, eval_dataset=data[:4], callbacks=[cb, spy])
    trainer.train()
    assert cb.run.status == "completed"
    assert "training" in cb.run.stages and "evaluation" in cb.run.stages
    assert cb.run.work["units"] == 3
    # The figures are in the logs the callbacks after ours receive. `state.log_history` is
    # written before any callback's on_log runs, so it never has them (docs/python.md says how
    # to get them into W&B/TensorBoard).
    assert spy.seen and all("energy_kwh" in logs and "emissions_kg" in logs for logs in spy.seen)


def test_a_real_lightning_fit(host, tmp_path):
    import lightning as L

    from wattprint.integrations.lightning import WattprintCallback

    class Tiny(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.layer = torch.nn.Linear(4, 1)

        def training_step(self, batch, i):
            x, y = batch
            return torch.nn.functional.mse_loss(self.layer(x), y)

        def validation_step(self, batch, i):
            x, y = batch
            self.log("val_loss", torch.nn.functional.mse_loss(self.layer(x), y))

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    ds = torch.utils.data.TensorDataset(torch.randn(32, 4), torch.randn(32, 1))
    dl = torch.utils.data.DataLoader(ds, batch_size=8)
    cb = WattprintCallback(env=host.env(), interval=0.1, project="lightning-real")
    trainer = L.Trainer(max_epochs=2, callbacks=[cb], accelerator="cpu", logger=False,
                        enable_checkpointing=False, default_root_dir=str(tmp_path))
    trainer.fit(Tiny(), dl, dl)
    assert cb.run.status == "completed"
    assert cb.run.work["units"] == 8
    assert {"training", "evaluation"} <= set(cb.run.stages)
