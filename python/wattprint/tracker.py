"""The ``Tracker``: one measured run of Python code, driven by the Rust session.

Start-up matters (the tracker is imported by every training script): only modules Python has
loaded anyway are imported at import time; json, logging and the rest when first needed.
"""

from __future__ import annotations

import os
import sys
import time
import warnings

from . import _native, ranks


def _json():
    import json

    return json


def _log():
    import logging

    return logging.getLogger("wattprint")


class _Block:
    """A ``with`` block calling ``enter()`` and ``leave()`` (contextlib costs start-up time)."""

    def __init__(self, enter, leave):
        self._enter, self._leave = enter, leave

    def __enter__(self):
        self._enter()
        return self

    def __exit__(self, *exc):
        self._leave()
        return False


class WattprintWarning(UserWarning):
    """Something the measurement wants you to know (a sensor missing, a record not kept)."""


class BudgetExceeded(RuntimeError):
    """A cap or budget stopped the run (raised at the next step when ``on_limit="raise"``)."""

    def __init__(self, message: str, limits: dict | None = None):
        super().__init__(message)
        self.limits = limits or {}


class Window:
    """The measurement of one window or stage."""

    def __init__(self, data: dict):
        self._data = data

    name = property(lambda self: self._data["name"])
    kind = property(lambda self: self._data["kind"])
    start_s = property(lambda self: self._data["start_s"])
    end_s = property(lambda self: self._data["end_s"])
    energy_kwh = property(lambda self: self._data["energy_kwh"])
    emissions_kg = property(lambda self: self._data["emissions_kg"])

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s

    @property
    def work(self) -> dict | None:
        return self._data.get("work")

    @property
    def j_per_unit(self) -> float | None:
        return (self.work or {}).get("j_per_unit")

    @property
    def g_per_unit(self) -> float | None:
        return (self.work or {}).get("g_per_unit")

    def to_dict(self) -> dict:
        return _json().loads(_json().dumps(self._data))

    def __repr__(self) -> str:
        return f"Window({self.name!r}, {self.energy_kwh} kWh, {self.emissions_kg} kg CO2e)"


class Run:
    """A finished run: the record wattprint stored (``wattprint show ID`` shows the same)."""

    def __init__(self, record_json: str, saved_locally: bool = True):
        self._json = record_json
        self._rec = _json().loads(record_json)
        self.saved_locally = saved_locally

    @property
    def record(self) -> str:
        """The run record, as JSON text (the schema of ``wattprint export --format jsonl``)."""
        return self._json

    def to_dict(self) -> dict:
        """The run record as a dict (a copy)."""
        return _json().loads(self._json)

    id = property(lambda self: self._rec["id"])
    project = property(lambda self: self._rec["project"])
    status = property(lambda self: self._rec["status"])
    duration_s = property(lambda self: self._rec["duration_s"])

    @property
    def energy_kwh(self) -> float:
        """IT energy (before PUE), kWh."""
        return self._rec["energy_kwh"]["total"]

    @property
    def emissions_kg(self) -> float:
        """Total emissions (operational + embodied), kg CO2e."""
        return self._rec["emissions_kg"]["total"]

    @property
    def breakdown(self) -> dict:
        """Energy (kWh) and emissions (kg) by component: cpu/gpu/ram, dynamic/static, PUE..."""
        return {"energy_kwh": dict(self._rec["energy_kwh"]), "emissions_kg": dict(self._rec["emissions_kg"])}

    @property
    def devices(self) -> list:
        """Energy per device, with the method that measured it."""
        return self.to_dict()["devices"]

    @property
    def methods(self) -> dict:
        """How each figure was obtained (e.g. RAPL, NVML, model)."""
        return dict(self._rec["methods"])

    @property
    def carbon_intensity(self) -> dict:
        """The intensity used and its source."""
        return dict(self._rec["carbon_intensity"])

    @property
    def assumptions(self) -> list:
        """Every factor used, with its value, unit and source."""
        return self.to_dict()["assumptions"]

    @property
    def windows(self) -> list:
        return [Window(w) for w in (self._rec.get("segments") or {}).get("windows", [])]

    @property
    def stages(self) -> dict:
        """Energy per stage, kWh (repeated stages summed)."""
        out: dict = {}
        for w in self.windows:
            if w.kind == "stage":
                out[w.name] = out.get(w.name, 0.0) + w.energy_kwh
        return out

    @property
    def work(self) -> dict | None:
        """Work over the whole run: units, unit, j_per_unit, g_per_unit (None per unit if 0)."""
        return (self._rec.get("segments") or {}).get("work")

    def __repr__(self) -> str:
        return f"Run({self.id!r}, {self.status}, {self.energy_kwh} kWh, {self.emissions_kg} kg CO2e)"


def _auto_sync() -> None:
    """Wait for the accelerator when torch is already in use (torch is never imported here)."""
    torch = sys.modules.get("torch")
    if torch is None:
        return
    cuda = getattr(torch, "cuda", None)
    try:
        if cuda is not None and cuda.is_available() and cuda.is_initialized():
            cuda.synchronize()
    except Exception:  # a broken driver must not break the training loop
        pass


class Tracker:
    """Measure the energy and carbon of this process's work with wattprint's engine.

    Options are the CLI's, as keyword arguments (``budget_kwh=`` for ``--budget-kwh``), with
    the same precedence: argument, then ``WATTPRINT_*`` variable, then configuration file.
    Durations take seconds or text (``max_duration="72h"``).

    ``on_limit``: what a cap or budget does once reached. ``"signal"`` (default) stops the
    process as ``wattprint run`` stops its job (the stop signal, SIGTERM; the run is saved as
    stopped first); ``"raise"`` raises :class:`BudgetExceeded` in your loop at the next
    ``check()``, ``add_work()``, ``progress()``, window or live read.

    ``sync``: called before each window edge so queued accelerator work is counted where it
    belongs; default: ``torch.cuda.synchronize`` when torch is already imported and CUDA
    initialised; ``False``: never.

    Lineage: ``model=`` (or ``produces=``), ``stage=`` (preparation, tuning, training,
    evaluation, inference, debug: the whole run's stage; ``t.stage()`` splits a run),
    ``sweep=``, ``trial=``, ``base_model=``, ``final=True``, ``objective="val_loss=0.31:min"``;
    a W&B sweep (``WANDB_SWEEP_ID``) or a Ray Tune trial already running is detected.

    ``ranks``: ``"leader"`` (default) measures only on the node's local rank 0 (the others are
    passive trackers); ``"all"`` measures in every process.
    """

    def __init__(
        self,
        project: str | None = None,
        location: str | None = None,
        tags: dict | None = None,
        scope: str | None = None,
        interval: float | str | None = None,
        server: str | None = None,
        budget_kwh: float | None = None,
        budget_kg: float | None = None,
        max_duration: float | str | None = None,
        on_limit: str = "signal",
        sync=None,
        ranks: str = "leader",
        env: dict | None = None,
        **options,
    ):
        if on_limit not in ("signal", "raise"):
            raise ValueError(f'on_limit={on_limit!r}: must be "signal" or "raise"')
        if ranks not in ("leader", "all"):
            raise ValueError(f'ranks={ranks!r}: must be "leader" or "all"')
        known = set(_native.option_names())
        unknown = sorted(k for k in options if k not in known)
        if unknown:
            raise TypeError(f"Tracker() got unknown options: {', '.join(unknown)}")
        self._options: dict = {k: v for k, v in options.items() if v is not None}
        for k, v in (
            ("project", project),
            ("location", location),
            ("scope", scope),
            ("interval", interval),
            ("server", server),
            ("budget_kwh", budget_kwh),
            ("budget_kg", budget_kg),
            ("max_duration", max_duration),
        ):
            if v is not None:
                self._options[k] = v
        if tags:
            self._options["tags"] = {str(k): str(v) for k, v in tags.items()}
        self._options.setdefault("command", [_describe_command()])
        detected = _launcher_lineage()
        if detected:
            self._options.setdefault("detected", detected)
        self._on_limit = on_limit
        self._sync = sync
        self._env = dict(os.environ if env is None else env)
        self._measures = ranks == "all" or _ranks_measures(self._env)
        self._native = None
        import _thread  # builtin: threading costs start-up time

        self._lock = _thread.allocate_lock()
        self._startup_ms = 0.0
        self._raised = False
        self._prev_handler = None
        self.run: Run | None = None

    # life ------------------------------------------------------------------------------------

    @property
    def measuring(self) -> bool:
        """Whether this process measures (False on non-leader ranks and once stopped)."""
        return self._native is not None

    @property
    def run_id(self) -> str | None:
        return self._native.run_id if self._native is not None else (self.run.id if self.run else None)

    def start(self) -> "Tracker":
        """Start measuring (the first record is saved at once)."""
        with self._lock:
            if self._native is not None:
                raise RuntimeError("this tracker is already started")
            if not self._measures:
                return self
            t0 = time.perf_counter()
            self._native = _native.NativeSession(
                self._env, self._options, os.getpid(), "signal" if self._on_limit == "signal" else "raise"
            )
            self._startup_ms = (time.perf_counter() - t0) * 1000.0
            self.run = None
            self._raised = False
        if self._on_limit == "signal":
            self._install_stop_handler()
        self._relay()
        return self

    def stop(self, failed: bool = False) -> Run | None:
        """Stop measuring and save the run; returns it (None on a passive rank).

        The GIL is released while the sampler thread is joined and the record written, so
        other Python threads keep running.
        """
        with self._lock:
            native, self._native = self._native, None
        if native is None:
            return self.run
        self._restore_stop_handler()
        record, saved = native.stop(failed, self._startup_ms)
        self._relay(native)
        self.run = Run(record, saved)
        return self.run

    def flush(self) -> None:
        """Save a checkpoint of the running record now (store and server)."""
        n = self._native
        if n is not None:
            n.checkpoint()
            self._relay()
        self.check()

    def __enter__(self) -> "Tracker":
        return self.start()

    def __exit__(self, exc_type, exc, tb) -> None:
        self.stop(failed=exc_type is not None and not issubclass(exc_type, BudgetExceeded))

    def __call__(self, fn):
        """Use a tracker as a decorator: each call is measured as one run."""
        import functools

        opts = dict(self._options)

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            t = Tracker(on_limit=self._on_limit, sync=self._sync, ranks="all" if self._measures else "leader",
                        env=self._env, **opts)
            with t:
                return fn(*args, **kwargs)

        return wrapper

    # limits ----------------------------------------------------------------------------------

    def check(self) -> None:
        """Raise :class:`BudgetExceeded` if a cap or budget asked to stop (on_limit="raise")."""
        n = self._native
        if n is None or self._raised or not n.stop_requested():
            return
        if self._on_limit == "raise":
            self._raised = True
            limits = _json().loads(n.limits_json())
            stopped = limits.get("stopped") or {}
            what = stopped.get("limit", "a limit")
            raise BudgetExceeded(
                f"wattprint: {what} reached after {stopped.get('at_s', 0):.1f} s; "
                "stop the work (the run is saved when the tracker stops)",
                limits,
            )

    def limits(self) -> dict:
        """Limit events so far, the latest prediction (P10–P90) and the stop, if any."""
        n = self._native
        return _json().loads(n.limits_json()) if n is not None else {}

    def progress(self, done: float, total: float) -> None:
        """Report progress (``done`` of ``total`` steps) for the P10–P90 prediction."""
        n = self._native
        if n is not None:
            n.progress(float(done), float(total))
        self.check()

    def checkpoint_saved(self) -> None:
        """Say that a checkpoint was just saved: if the run fails later, only the energy spent
        since then is reported as discarded (without any such call, that is unknown)."""
        n = self._native
        if n is not None:
            n.checkpoint_saved()

    # live reads ------------------------------------------------------------------------------

    def energy(self) -> float:
        """IT energy so far, kWh (cheap: no sensor is read)."""
        n = self._native
        v = n.live()[1] if n is not None else (self.run.energy_kwh if self.run else 0.0)
        self.check()
        return v

    def emissions(self) -> float:
        """Operational emissions so far (IT × PUE × intensity), kg CO2e."""
        n = self._native
        v = n.live()[2] if n is not None else (self.run.emissions_kg if self.run else 0.0)
        self.check()
        return v

    def power(self) -> float:
        """Power over the latest interval, W."""
        n = self._native
        return n.live()[3] if n is not None else 0.0

    # windows, stages, work -------------------------------------------------------------------

    def _do_sync(self) -> None:
        if self._sync is False:
            return
        if callable(self._sync):
            self._sync()
        else:
            _auto_sync()

    def begin_window(self, name: str, sync=None) -> None:
        """Start measuring the span ``name`` (nested and overlapping windows allowed)."""
        n = self._native
        if n is None:
            return
        (sync if callable(sync) else self._do_sync)() if sync is not False else None
        n.begin_window(str(name), "window")
        self.check()

    def end_window(self, name: str, sync=None) -> Window | None:
        """End the span ``name``; its energy, emissions and work per unit."""
        n = self._native
        if n is None:
            return None
        (sync if callable(sync) else self._do_sync)() if sync is not False else None
        w = Window(_json().loads(n.end_window(str(name))))
        self.check()
        return w

    def window(self, name: str) -> _Block:
        """``with t.window("eval"):`` — a window over the block."""
        return _Block(lambda: self.begin_window(name), lambda: self.end_window(name))

    def stage(self, name: str) -> _Block:
        """A stage of the model's life (preparation, training, evaluation, inference)."""
        n = self._native

        def enter():
            if n is not None:
                self._do_sync()
                n.begin_window(str(name), "stage")

        def leave():
            if n is not None and self._native is n:
                self._do_sync()
                n.end_window(str(name))

        return _Block(enter, leave)

    def add_work(self, n: float, unit: str = "samples") -> None:
        """Count ``n`` units of work (tokens, samples, images...) for J and gCO2e per unit."""
        native = self._native
        if native is not None:
            native.add_work(float(n), unit)
        self.check()

    # plumbing --------------------------------------------------------------------------------

    def _relay(self, native=None) -> None:
        n = native or self._native
        if n is None:
            return
        for level, text in n.take_messages():
            if level in ("warning", "loss"):
                warnings.warn(f"wattprint: {text}", WattprintWarning, stacklevel=3)
            elif level == "info":
                _log().info("%s", text)
            else:
                _log().debug("%s", text)

    def _install_stop_handler(self) -> None:
        """Save the run as stopped before the stop signal ends the process (main thread only,
        and only where Python still has the default handler)."""
        import signal
        import threading

        if threading.current_thread() is not threading.main_thread():
            return
        try:
            if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
                return
            tracker = self

            def on_term(signum, frame):
                tracker.stop()
                signal.signal(signum, signal.SIG_DFL)
                os.kill(os.getpid(), signum)

            signal.signal(signal.SIGTERM, on_term)
            self._prev_handler = signal.SIG_DFL
        except (ValueError, OSError):
            self._prev_handler = None

    def _restore_stop_handler(self) -> None:
        if self._prev_handler is None:
            return
        import signal
        import threading

        try:
            if threading.current_thread() is threading.main_thread():
                signal.signal(signal.SIGTERM, self._prev_handler)
        except (ValueError, OSError):
            pass
        self._prev_handler = None


def _ranks_measures(env: dict) -> bool:
    return ranks.measures(env)


def _launcher_lineage() -> dict:
    """Ray Tune's experiment and trial when this process is a Tune trial: {field: (value,
    source)}. Ray is never imported here; only a Ray already loaded is asked."""
    train = sys.modules.get("ray.train")
    if train is None:
        return {}
    try:
        ctx = train.get_context()
        found = {
            "trial": (ctx.get_trial_id(), "ray.train.get_context().get_trial_id()"),
            "sweep": (ctx.get_experiment_name(), "ray.train.get_context().get_experiment_name()"),
        }
    except Exception:  # not inside a Tune trial
        return {}
    return {k: (str(v), src) for k, (v, src) in found.items() if v}


def _describe_command() -> str:
    argv = [a for a in sys.argv if a] or ["python"]
    return "python " + " ".join(argv)[:4000]


def track(fn=None, **options):
    """Decorator: ``@wattprint.track`` or ``@wattprint.track(project="x", ...)``; each call of
    the function is one measured run."""
    if fn is not None and callable(fn):
        return Tracker(**options)(fn)
    return lambda f: Tracker(**options)(f)
