"""CodeCarbon's API on wattprint's engine: change one import.

    from wattprint.compat.codecarbon import EmissionsTracker   # was: from codecarbon import ...

``EmissionsTracker``, ``OfflineEmissionsTracker`` and ``track_emissions`` take CodeCarbon's
argument names; those that matter are honoured (project_name, country_iso_code,
measure_power_secs, tracking_mode, output_dir, output_file, save_to_file, pue, experiment_id),
the rest warn and are ignored: nothing a CodeCarbon script passes makes it crash. ``stop()``
returns the emissions in kg, and ``emissions.csv`` gets CodeCarbon's columns (the same writer
as ``wattprint export --format codecarbon``). Runs are also in wattprint's store
(``wattprint runs``).
"""

import functools
import os
import time
import warnings
from typing import Any, Callable, Dict, Optional

from .. import _native
from ..tracker import Run, Tracker, WattprintWarning

# CodeCarbon arguments accepted without effect (CodeCarbon's own outputs and services).
_IGNORED = {
    "api_call_interval", "api_endpoint", "api_key", "save_to_api", "save_to_logger",
    "logging_logger", "save_to_prometheus", "prometheus_url", "save_to_logfire",
    "output_handlers", "gpu_ids", "emissions_endpoint", "experiment_name",
    "co2_signal_api_token", "electricitymaps_api_token", "log_level", "on_csv_write",
    "logger_preamble", "default_cpu_power", "allow_multiple_runs", "tracking_mode_gpu",
    "force_cpu_power", "force_ram_power", "rapl_include_dram", "rapl_prefer_psys",
    "region", "cloud_provider", "cloud_region", "country_2letter_iso_code", "offline",
}


class EmissionsData:
    """The fields of CodeCarbon's ``EmissionsData`` a script reads, from a wattprint record."""

    def __init__(self, rec: Dict[str, Any], duration: Optional[float] = None,
                 energy_kwh: Optional[float] = None, emissions_kg: Optional[float] = None):
        e = rec.get("energy_kwh", {})
        self.timestamp = rec.get("ended_at") or rec.get("started_at")
        self.project_name = rec.get("project")
        self.run_id = rec.get("id")
        self.duration = rec.get("duration_s", 0.0) if duration is None else duration
        self.emissions = rec.get("emissions_kg", {}).get("total", 0.0) if emissions_kg is None else emissions_kg
        self.energy_consumed = e.get("total", 0.0) if energy_kwh is None else energy_kwh
        self.emissions_rate = self.emissions / self.duration if self.duration else 0.0
        self.cpu_energy = e.get("cpu", 0.0)
        self.gpu_energy = e.get("gpu", 0.0)
        self.ram_energy = e.get("ram", 0.0)
        loc = rec.get("location", {})
        self.country_name = loc.get("name")
        self.country_iso_code = loc.get("code")
        self.pue = rec.get("pue")
        self.tracking_mode = rec.get("scope")
        w = lambda kwh: kwh * 3.6e6 / self.duration if self.duration and kwh == kwh else float("nan")
        self.cpu_power = w(self.cpu_energy)
        self.gpu_power = w(self.gpu_energy)
        self.ram_power = w(self.ram_energy)

    def __repr__(self) -> str:
        return f"EmissionsData(emissions={self.emissions}, energy_consumed={self.energy_consumed})"


class Task:
    """A finished task (CodeCarbon keeps them in ``tracker._tasks``)."""

    def __init__(self, name: str, emissions_data: EmissionsData):
        self.task_name = name
        self.emissions_data = emissions_data


class EmissionsTracker:
    """CodeCarbon's ``EmissionsTracker`` on wattprint's engine."""

    _offline_default = False

    def __init__(
        self,
        project_name: Optional[str] = None,
        measure_power_secs: Optional[float] = None,
        output_dir: Optional[str] = None,
        output_file: Optional[str] = None,
        save_to_file: Optional[bool] = None,
        tracking_mode: Optional[str] = None,
        country_iso_code: Optional[str] = None,
        pue: Optional[float] = None,
        experiment_id: Optional[str] = None,
        *args: Any,
        **kwargs: Any,
    ):
        if args:
            warnings.warn(f"wattprint.compat.codecarbon: positional arguments {args!r} ignored",
                          WattprintWarning, stacklevel=2)
        for k in sorted(kwargs):
            why = "not supported by wattprint" if k in _IGNORED else "unknown"
            warnings.warn(f"wattprint.compat.codecarbon: argument {k}= is {why}; ignored",
                          WattprintWarning, stacklevel=2)
        self._project_name = project_name or "codecarbon"
        self._output_dir = output_dir or "."
        self._output_file = output_file or "emissions.csv"
        self._save_to_file = True if save_to_file is None else bool(save_to_file)
        opts: Dict[str, Any] = {"project": self._project_name}
        if measure_power_secs is not None:
            opts["interval"] = float(measure_power_secs)
        if tracking_mode is not None:
            if tracking_mode in ("machine", "process"):
                opts["scope"] = tracking_mode
            else:
                warnings.warn(f"wattprint.compat.codecarbon: tracking_mode={tracking_mode!r} is not "
                              "'machine' or 'process'; measuring the machine", WattprintWarning, stacklevel=2)
        if country_iso_code:
            code = str(country_iso_code)
            opts["location"] = _native.iso3_to_iso2(code) or code
        if pue is not None:
            opts["pue"] = float(pue)
        if experiment_id is not None:
            opts["tags"] = {"codecarbon.experiment_id": str(experiment_id)}
        self._tracker = Tracker(on_limit="raise", **opts)
        self._tasks: Dict[str, Task] = {}
        self._task_t0: Dict[str, float] = {}
        self.final_emissions: Optional[float] = None
        self.final_emissions_data: Optional[EmissionsData] = None
        self.run: Optional[Run] = None

    # CodeCarbon's life ------------------------------------------------------------------------

    def start(self) -> None:
        if not self._tracker.measuring and self.run is None:
            self._tracker.start()

    def stop(self) -> Optional[float]:
        """Stop; the run's emissions in kg CO2e (CodeCarbon's return value)."""
        if self.run is not None:
            return self.final_emissions
        run = self._tracker.stop()
        if run is None:
            return None
        self.run = run
        rec = run.to_dict()
        self.final_emissions_data = EmissionsData(rec)
        self.final_emissions = self.final_emissions_data.emissions
        if self._save_to_file:
            self._write_csv(run)
        return self.final_emissions

    def flush(self) -> Optional[float]:
        """Checkpoint the running record; the emissions so far (kg)."""
        if not self._tracker.measuring:
            return None
        self._tracker.flush()
        return self._tracker.emissions()

    def start_task(self, task_name: str = "") -> None:
        self.start()
        name = task_name or f"task-{len(self._tasks) + len(self._task_t0) + 1}"
        self._task_t0[name] = time.monotonic()
        self._tracker.begin_window(name)
        self._last_task = name

    def stop_task(self, task_name: Optional[str] = None) -> Optional[EmissionsData]:
        name = task_name or getattr(self, "_last_task", None)
        if name is None or name not in self._task_t0:
            warnings.warn(f"wattprint.compat.codecarbon: no task {name!r} is running",
                          WattprintWarning, stacklevel=2)
            return None
        del self._task_t0[name]
        w = self._tracker.end_window(name)
        if w is None:
            return None
        # A window has its total energy only: per-component figures are not known (NaN).
        nan = float("nan")
        data = EmissionsData(
            {"project": self._project_name, "id": self._tracker.run_id,
             "energy_kwh": {"cpu": nan, "gpu": nan, "ram": nan}},
            duration=w.duration_s, energy_kwh=w.energy_kwh, emissions_kg=w.emissions_kg,
        )
        self._tasks[name] = Task(name, data)
        return data

    def __enter__(self) -> "EmissionsTracker":
        self.start()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.stop()

    # output ----------------------------------------------------------------------------------

    def _write_csv(self, run: Run) -> None:
        text = _native.codecarbon_csv(run.record)
        header, _, row = text.partition("\n")
        path = os.path.join(self._output_dir, self._output_file)
        os.makedirs(self._output_dir, exist_ok=True)
        exists = os.path.exists(path) and os.path.getsize(path) > 0
        if exists:
            with open(path, "r", encoding="utf-8") as f:
                first = f.readline().rstrip("\r\n")
            if first != header:
                os.replace(path, path + ".bak")
                exists = False
                warnings.warn(f"wattprint.compat.codecarbon: {path} had other columns; kept as {path}.bak",
                              WattprintWarning, stacklevel=3)
        with open(path, "a", encoding="utf-8", newline="") as f:
            f.write(row if exists else text)


class OfflineEmissionsTracker(EmissionsTracker):
    """CodeCarbon's offline tracker: the location comes from ``country_iso_code`` (no lookup)."""


def track_emissions(fn: Optional[Callable] = None, *dargs: Any, offline: bool = False, **dkwargs: Any) -> Callable:
    """CodeCarbon's decorator: ``@track_emissions`` or ``@track_emissions(project_name=...)``."""

    def decorate(f: Callable) -> Callable:
        @functools.wraps(f)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            cls = OfflineEmissionsTracker if offline else EmissionsTracker
            t = cls(*dargs, **dkwargs)
            t.start()
            try:
                return f(*args, **kwargs)
            finally:
                t.stop()

        return wrapper

    if callable(fn):
        return decorate(fn)
    if fn is not None:  # a positional project_name
        dargs = (fn,) + dargs
    return decorate
