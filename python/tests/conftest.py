"""A fake host for the real engine: powercap counters the tests set, a procfs, a home for the
store. The package under test is the built wheel installed in the test venv."""

import os
import shutil
import time
from pathlib import Path
from typing import Callable, Dict

import pytest


class FakeHost:
    """One RAPL package and its DRAM, 4 CPUs, 16 GB (as the session crate's tests)."""

    def __init__(self, root: Path):
        self.root = root
        for zone, name in (("intel-rapl:0", "package-0"), ("intel-rapl:0:0", "dram")):
            z = self.sys / "class/powercap" / zone
            z.mkdir(parents=True)
            (z / "name").write_text(name + "\n")
            (z / "energy_uj").write_text("1000000\n")
            (z / "max_energy_range_uj").write_text("262143328850\n")
        p = root / "proc"
        p.mkdir()
        (p / "stat").write_text("cpu  100 0 100 1000 0 0 0 0 0 0\ncpu0 25 0 25 250 0 0 0 0 0 0\n")
        (p / "meminfo").write_text(
            "MemTotal:       16000000 kB\nMemFree:         8000000 kB\nMemAvailable:    8000000 kB\n"
        )
        (p / "cpuinfo").write_text(
            "processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz\nphysical id\t: 0\n\n"
        )
        self.joules = 0.0

    @property
    def sys(self) -> Path:
        return self.root / "sys"

    @property
    def home(self) -> Path:
        return self.root / "home"

    def env(self, **extra: str) -> Dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("WATTPRINT_") and k not in ("LOCAL_RANK", "SLURM_LOCALID")
        }
        env.update(
            WATTPRINT_SYSFS_ROOT=str(self.sys),
            WATTPRINT_PROCFS_ROOT=str(self.root / "proc"),
            WATTPRINT_HOME=str(self.home),
            WATTPRINT_NVML_LIBRARY=str(self.root / "none.so"),
            WATTPRINT_SYSTEM_CONFIG=str(self.root / "none.toml"),
            WATTPRINT_CONFIG=str(self.root / "user.toml"),
            WATTPRINT_LOCATION="FR",
        )
        env.update(extra)
        return env

    def add_j(self, joules: float) -> None:
        """Add `joules` to the machine: 5/6 on the package, 1/6 on the DRAM (atomically, as
        the kernel's files read)."""
        self.joules += joules
        for zone, share in (("intel-rapl:0", 5 / 6), ("intel-rapl:0:0", 1 / 6)):
            f = self.sys / "class/powercap" / zone / "energy_uj"
            tmp = f.with_suffix(".tmp")
            tmp.write_text(f"{round((1.0 + self.joules * share) * 1e6)}\n")
            os.replace(tmp, f)


@pytest.fixture
def host(tmp_path: Path) -> FakeHost:
    return FakeHost(tmp_path)


def eventually(what: str, f: Callable[[], bool], timeout: float = 20.0) -> None:
    """Poll until `f` holds (the deadline is a failure bound, not a timing assumption)."""
    deadline = time.monotonic() + timeout
    while not f():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.005)


def wattprint_bin() -> str:
    """The CLI binary built from this checkout (scripts/test-python.sh sets WATTPRINT_BIN)."""
    b = os.environ.get("WATTPRINT_BIN") or shutil.which("wattprint")
    assert b, "WATTPRINT_BIN is not set: run scripts/test-python.sh"
    return b
