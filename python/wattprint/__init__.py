"""wattprint: energy and carbon of Python code, measured by wattprint's Rust engine.

    import wattprint
    with wattprint.Tracker(project="llm", location="FR") as t:
        train()
    print(t.run.energy_kwh, t.run.emissions_kg)
"""

import time as _time

_IMPORT_T0 = _time.perf_counter()

from ._native import __version__  # noqa: E402
from .tracker import (  # noqa: E402
    BudgetExceeded,
    Run,
    Tracker,
    WattprintWarning,
    Window,
    track,
)

__all__ = [
    "BudgetExceeded",
    "Run",
    "Tracker",
    "WattprintWarning",
    "Window",
    "track",
    "__version__",
]
