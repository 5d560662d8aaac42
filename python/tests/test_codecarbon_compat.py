"""CodeCarbon scripts switched to wattprint by their import line only."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import wattprint_bin

SCRIPTS = Path(__file__).parent / "codecarbon_scripts"
CODECARBON_FIRST_COLUMNS = ["timestamp", "project_name", "run_id"]


def switched(name: str, out: Path) -> Path:
    text = (SCRIPTS / name).read_text()
    assert "from codecarbon import" in text
    p = out / name
    p.write_text(text.replace("from codecarbon import", "from wattprint.compat.codecarbon import"))
    return p


def run_script(host, script: Path, cwd: Path):
    env = host.env(OUT_DIR=str(cwd / "out"))
    p = subprocess.run([sys.executable, "-W", "always", str(script)], cwd=cwd, env=env,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    return p


def rows(path: Path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_a_task_script_runs_unchanged_and_writes_codecarbons_csv(host, tmp_path):
    p = run_script(host, switched("tasks.py", tmp_path), tmp_path)
    assert "Emissions :" in p.stdout and "infer1:" in p.stdout
    header = (tmp_path / "emissions.csv").read_text().splitlines()[0].split(",")
    assert header[:3] == CODECARBON_FIRST_COLUMNS and "energy_consumed" in header
    (row,) = rows(tmp_path / "emissions.csv")
    assert row["project_name"] == "cc_tasks" and float(row["energy_consumed"]) >= 0
    # the run is wattprint's too, with the tasks as windows
    out = subprocess.run([wattprint_bin(), "show", row["run_id"], "--json"], env=host.env(),
                         capture_output=True, text=True, timeout=60)
    rec = json.loads(out.stdout)
    assert [w["name"] for w in rec["segments"]["windows"]] == ["prepare", "infer0", "infer1"]
    # a second run appends a row under the same header
    run_script(host, switched("tasks.py", tmp_path), tmp_path)
    assert len(rows(tmp_path / "emissions.csv")) == 2


def test_offline_tracker_decorator_and_context_manager_with_codecarbons_arguments(host, tmp_path):
    p = run_script(host, switched("offline_decorator.py", tmp_path), tmp_path)
    assert "save_to_api= is not supported by wattprint; ignored" in p.stderr
    got = rows(tmp_path / "out" / "emissions.csv")
    assert [r["project_name"] for r in got] == ["cc_decorated", "cc_ctx"]
    assert [r["country_iso_code"] for r in got] == ["FRA", "CAN"]
    assert got[1]["tracking_mode"] == "process"


def test_unknown_arguments_warn_never_crash(host, monkeypatch):
    from wattprint.compat.codecarbon import EmissionsTracker

    for k, v in host.env().items():
        monkeypatch.setenv(k, v)
    with pytest.warns(UserWarning, match="argument colour= is unknown"):
        t = EmissionsTracker(project_name="x", colour="blue", save_to_file=False, measure_power_secs=0.1)
    t.start()
    assert t.stop() >= 0.0 and t.final_emissions_data.project_name == "x"
