"""The Tracker on the real engine: start/stop, the record, the store the CLI reads, options and
their precedence, the GIL, windows, stages, work units, live reads, limits."""

import http.server
import json
import os
import subprocess
import sys
import textwrap
import threading
import time
import warnings

import pytest

import wattprint
from conftest import eventually, wattprint_bin

J_PER_KWH = 3.6e6


def tracker(host, **kw):
    kw.setdefault("interval", 0.1)
    kw.setdefault("env", host.env())
    kw.setdefault("intensity", 100.0)
    kw.setdefault("pue", 1.0)
    kw.setdefault("no_embodied", True)
    return wattprint.Tracker(**kw)


def step(host, t, joules=3.0):
    """Add energy, wait until the sampler has read it and a quiet interval followed it (the
    latest power is then 0: window edges carry no extrapolation)."""
    before = t.energy()
    host.add_j(joules)
    eventually("the sampler reads the step", lambda: t.energy() >= before + joules / J_PER_KWH * 0.999)
    eventually("a quiet interval", lambda: t.power() == 0.0)


def cli(host, *args):
    out = subprocess.run(
        [wattprint_bin(), *args], env=host.env(), capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_a_run_from_start_to_the_store_the_cli_reads(host):
    t = tracker(host, project="py-tests", tags={"lr": 3e-4}).start()
    assert t.measuring and t.run_id
    step(host, t, 3.0)
    step(host, t, 3.0)
    t.flush()
    running = json.loads(cli(host, "runs", "--json"))
    assert [r["id"] for r in running] == [t.run_id] and running[0]["status"] == "running"
    run = t.stop()
    assert run.status == "completed" and run.saved_locally
    assert run.energy_kwh * J_PER_KWH == pytest.approx(6.0, rel=1e-4)
    # 6 J at 100 g/kWh, PUE 1
    assert run.emissions_kg * 1e3 == pytest.approx(6.0 / J_PER_KWH * 100.0, rel=1e-4)
    d = run.to_dict()
    assert d == json.loads(run.record) and d["project"] == "py-tests" and d["tags"] == {"lr": "0.0003"}
    assert run.methods["cpu"] != "none" and {"cpu", "ram"} <= set(run.breakdown["energy_kwh"])
    assert sum(dev["energy_kwh"] for dev in run.devices) == pytest.approx(run.energy_kwh, rel=1e-3)
    assert d["tracker"]["cpu_s"] >= 0 and d["tracker"]["startup_ms"] > 0
    # the CLI sees the same run, finished
    shown = json.loads(cli(host, "runs", "--json"))
    assert [(r["id"], r["status"]) for r in shown] == [(run.id, "completed")]
    assert t.stop() is run, "stopping twice returns the same run"


def test_context_manager_decorator_and_a_failing_block(host):
    with tracker(host, project="ctx") as t:
        assert t.measuring
    assert t.run.status == "completed" and not t.measuring
    with pytest.raises(ZeroDivisionError):
        with tracker(host, project="ctx") as t2:
            1 / 0
    assert t2.run.status == "failed"

    @tracker(host, project="deco")
    def job(x):
        return x * 2

    assert job(21) == 42
    assert job(1) == 2

    @wattprint.track(project="deco2", env=host.env(), interval=0.1)
    def other():
        return "ok"

    assert other() == "ok"
    projects = sorted(r["project"] for r in json.loads(cli(host, "runs", "--json")))
    assert projects == ["ctx", "ctx", "deco", "deco", "deco2"]


def test_same_precedence_as_the_cli_argument_then_variable_then_configuration(host):
    (host.root / "user.toml").write_text('project = "from-config"\n')
    assert tracker(host, env=host.env()).start().stop().project == "from-config"
    env = host.env(WATTPRINT_PROJECT="from-env")
    assert tracker(host, env=env).start().stop().project == "from-env"
    assert tracker(host, env=env, project="from-arg").start().stop().project == "from-arg"


def test_option_errors_name_the_keyword_argument(host):
    with pytest.raises(ValueError, match=r"^budget_kwh= -1: a budget must be a positive number"):
        tracker(host, budget_kwh=-1).start()
    with pytest.raises(ValueError, match=r"^interval= "):
        tracker(host, interval=0.001).start()
    with pytest.raises(ValueError, match=r"^scope= "):
        tracker(host, scope="galaxy").start()
    with pytest.raises(TypeError, match="unknown options: colour"):
        tracker(host, colour="red")
    assert not (host.home / "wattprint.db").exists(), "nothing starts on a bad option"


class SlowServer(http.server.BaseHTTPRequestHandler):
    """A wattprint server that takes 0.5 s to answer each run upload (a Python thread)."""

    posts = 0

    def do_GET(self):
        self.send_response(404)
        self.end_headers()

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        self.rfile.read(n)
        time.sleep(0.5)
        type(self).posts += 1
        body = b'{"id":"x","outcome":"created"}'
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


def test_stop_releases_the_gil_python_threads_run_while_it_joins(host):
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), SlowServer)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    ticks = [0]
    done = threading.Event()

    def ticker():
        while not done.is_set():
            ticks[0] += 1
            time.sleep(0.001)

    try:
        env = host.env(WATTPRINT_TOKEN="wpt_test")
        t = tracker(host, env=env, server=f"http://127.0.0.1:{srv.server_port}")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t.start()
        th = threading.Thread(target=ticker)
        th.start()
        posts_before = SlowServer.posts
        t0, k0 = time.monotonic(), ticks[0]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            run = t.stop()
        took, ticked = time.monotonic() - t0, ticks[0] - k0
        done.set()
        th.join()
    finally:
        done.set()
        srv.shutdown()
    # the final upload was answered by a Python thread during stop(), and the ticker ran on
    assert SlowServer.posts > posts_before
    assert took >= 0.5
    assert ticked >= 20, f"only {ticked} ticks in {took:.2f} s of stop()"
    assert run.status == "completed"


def test_windows_stages_work_units_and_live_reads(host):
    t = tracker(host).start()
    eventually("a quiet interval", lambda: t.power() == 0.0)
    t.begin_window("outer")
    step(host, t, 3.0)
    with t.stage("preparation"):
        step(host, t, 1.5)
    t.begin_window("steady")
    with t.stage("training"):
        step(host, t, 3.0)
        t.add_work(300, unit="tokens")
    steady = t.end_window("steady")
    outer = t.end_window("outer")
    with pytest.raises(ValueError, match="no window named"):
        t.end_window("outer")
    with pytest.raises(ValueError, match="one unit per run"):
        t.add_work(1, unit="images")
    assert steady.energy_kwh * J_PER_KWH == pytest.approx(3.0, rel=1e-4)
    assert steady.work["units"] == 300 and steady.j_per_unit == pytest.approx(0.01, rel=1e-4)
    assert outer.energy_kwh * J_PER_KWH == pytest.approx(7.5, rel=1e-4)
    live = t.energy()
    assert live * J_PER_KWH == pytest.approx(7.5, rel=1e-4) and t.emissions() > 0
    t.begin_window("no-work")
    run = t.stop()
    assert run.stages == pytest.approx({"preparation": 1.5 / J_PER_KWH, "training": 3.0 / J_PER_KWH}, rel=1e-4)
    names = [w.name for w in run.windows]
    assert names == ["preparation", "training", "steady", "outer", "no-work"]
    last = run.windows[-1]
    assert last.to_dict()["open_at_end"] is True and last.j_per_unit is None
    assert run.work["units"] == 300 and run.work["j_per_unit"] == pytest.approx(7.5 / 300, rel=1e-4)
    # the store keeps the windows with the run
    shown = json.loads(cli(host, "show", run.id, "--json"))
    assert [w["name"] for w in shown["segments"]["windows"]] == names
    text = cli(host, "show", run.id)
    assert "\nstages\n" in text and "preparation" in text and "\nwindows\n" in text


def test_zero_units_give_none_not_infinity(host):
    t = tracker(host).start()
    t.add_work(0, unit="samples")
    run = t.stop()
    assert run.work == {"units": 0.0, "unit": "samples", "j_per_unit": None, "g_per_unit": None}


def test_a_budget_raises_at_the_next_step_when_asked(host):
    t = tracker(host, budget_kwh=2.0 / J_PER_KWH, on_limit="raise").start()
    raised = None
    deadline = time.monotonic() + 20
    while raised is None:
        assert time.monotonic() < deadline, "the budget never stopped the loop"
        host.add_j(1.0)
        try:
            t.add_work(1, unit="samples")
            time.sleep(0.02)
        except wattprint.BudgetExceeded as e:
            raised = e
    assert "budget_kwh" in str(raised)
    run = t.stop()
    assert run.status == "stopped_by_budget"
    assert run.to_dict()["stopped"]["limit"] == "budget_kwh"


def test_by_default_a_budget_stops_the_process_as_the_cli_does_and_saves_the_run(host, tmp_path):
    script = tmp_path / "job.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import json, os, sys, time
            sys.path.insert(0, {str(os.path.dirname(__file__))!r})
            from conftest import FakeHost
            from pathlib import Path
            import wattprint
            host = FakeHost.__new__(FakeHost); host.root = Path({str(host.root)!r}); host.joules = 0.0
            t = wattprint.Tracker(env=host.env(), interval=0.1, budget_kwh=2.0 / 3.6e6, no_embodied=True)
            t.start()
            print(t.run_id, flush=True)
            for _ in range(2000):
                host.add_j(1.0)
                time.sleep(0.01)
            print("never stopped", flush=True)
            """
        )
    )
    p = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    assert p.returncode == -15, (p.returncode, p.stdout, p.stderr)
    run_id = p.stdout.split()[0]
    shown = json.loads(cli(host, "show", run_id, "--json"))
    assert shown["status"] == "stopped_by_budget"


def test_progress_is_checked_and_feeds_the_prediction(host):
    t = tracker(host, expected_duration=60).start()
    with pytest.raises(ValueError, match="^done= "):
        t.progress(5, 4)
    t.progress(1, 4)
    step(host, t, 3.0)
    eventually("a prediction", lambda: t.limits().get("prediction") is not None)
    assert t.stop().to_dict()["prediction"] is not None


def test_only_the_local_leader_rank_measures(host):
    t = tracker(host, env=host.env(LOCAL_RANK="3")).start()
    assert not t.measuring and t.stop() is None and t.energy() == 0.0
    t.begin_window("w")
    assert t.end_window("w") is None
    assert not (host.home / "wattprint.db").exists()
    t = tracker(host, env=host.env(LOCAL_RANK="0")).start()
    assert t.measuring and t.stop().status == "completed"


def test_the_package_never_imports_torch():
    code = "import sys, wattprint; t = wattprint.Tracker; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False", out.stderr


def test_lineage_keywords_reach_the_record_and_the_cli_filters(host):
    run = tracker(host, model="bert-ft", stage="tuning", sweep="sw1", trial=3, objective="val_loss=0.4").start().stop()
    lin = run.to_dict()["lineage"]
    assert lin == {"model": "bert-ft", "stage": "tuning", "sweep": "sw1", "trial": "3",
                   "objective": {"name": "val_loss", "value": 0.4, "goal": "min"}}
    shown = json.loads(cli(host, "runs", "--json", "--model", "bert-ft", "--sweep", "sw1"))
    assert [r["id"] for r in shown] == [run.id]
    assert json.loads(cli(host, "runs", "--json", "--model", "other")) == []
    with pytest.raises(ValueError, match="stage="):
        tracker(host, stage="pretraining").start()
    # a W&B sweep agent's variables are detected, with their source
    env = dict(host.env(), WANDB_SWEEP_ID="wb9", WANDB_RUN_ID="r2")
    lin = tracker(host, env=env, model="m").start().stop().to_dict()["lineage"]
    assert (lin["sweep"], lin["trial"], lin["stage"]) == ("wb9", "r2", "tuning")
    assert lin["sources"]["sweep"] == "env:WANDB_SWEEP_ID"


def test_discarded_compute_after_the_last_checkpoint_and_unknown_without_one(host):
    t = tracker(host).start()
    step(host, t, 3.0)
    t.checkpoint_saved()
    step(host, t, 1.0)
    d = t.stop(failed=True).to_dict()["discarded"]
    assert d["checkpoints"] == 1
    # the 1 J after the checkpoint (pro rata over the interval the call fell in), none of the 3 J
    assert 0 < d["energy_kwh"] * J_PER_KWH <= 1.0 * (1 + 1e-6)
    t = tracker(host).start()
    step(host, t, 1.0)
    d = t.stop(failed=True).to_dict()["discarded"]
    assert d["energy_kwh"] is None and d["advice"].startswith("unknown")


def test_a_ray_tune_trial_already_running_is_detected(host, monkeypatch):
    import types

    class Context:
        def get_trial_id(self):
            return "train_fn_0a1b2_00003"

        def get_experiment_name(self):
            return "lr-search"

    fake = types.ModuleType("ray.train")
    fake.get_context = lambda: Context()
    monkeypatch.setitem(sys.modules, "ray.train", fake)
    lin = tracker(host, model="m").start().stop().to_dict()["lineage"]
    assert (lin["sweep"], lin["trial"], lin["stage"]) == ("lr-search", "train_fn_0a1b2_00003", "tuning")
    assert lin["sources"]["trial"] == "ray.train.get_context().get_trial_id()"
    # an explicit trial wins
    lin = tracker(host, trial=7).start().stop().to_dict()["lineage"]
    assert lin["trial"] == "7" and lin["sweep"] == "lr-search"
