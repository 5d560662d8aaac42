#!/usr/bin/env bash
# Hostile-client probes against `wattprint serve` (a script, not a test; not in the default test
# run): starts a server on loopback, then, each for a bounded time,
#   magnitude  two runs whose energy and emissions totals are 1e308, then totals and budgets;
#   time       started_at in year 9999 and 0000, a leap second, ended_at before started_at;
#   listing    a run with many samples, read by 4 parallel clients with one viewer token, and
#              walked page by page;
#   headers    many connections whose request headers never finish;
#   idle       many keep-alive connections left idle after one answer;
# and prints the answers' status codes, how many connections the server closed, the server's
# peak RSS (VmHWM) and whether `GET /health` answered within 1 s throughout (polled every
# 200 ms on fresh connections). Figures in docs/server.md ("Probes").
#
#   scripts/probe-server.sh                                  # SQLite in a temp dir
#   WATTPRINT_PROBE_DATABASE=postgres://… scripts/probe-server.sh
#   WATTPRINT_BIN=target/debug/wattprint SAMPLES=200000 CONNS=300 scripts/probe-server.sh
set -euo pipefail
cd "$(dirname "$0")/.."

SAMPLES="${SAMPLES:-200000}"
CONNS="${CONNS:-300}"
HEADER_TIMEOUT="${HEADER_TIMEOUT:-3s}"
if [ -z "${WATTPRINT_BIN:-}" ]; then
    cargo build --release -q -p wattprint --bin wattprint
    WATTPRINT_BIN="$PWD/target/release/wattprint"
fi
WORK="$(mktemp -d /tmp/wattprint-probe.XXXXXX)"
SERVER_PID=""
cleanup() {
    [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
DB="${WATTPRINT_PROBE_DATABASE:-sqlite://$WORK/server.db}"
export WATTPRINT_HOME="$WORK/home"

"$WATTPRINT_BIN" admin team create probe --database "$DB" >/dev/null
ADMIN="$("$WATTPRINT_BIN" admin token create --team probe --role admin --name probe-admin --database "$DB" 2>/dev/null)"
VIEWER="$("$WATTPRINT_BIN" admin token create --team probe --role viewer --name probe-viewer --database "$DB" 2>/dev/null)"
"$WATTPRINT_BIN" serve --listen 127.0.0.1:0 --database "$DB" --rate-limit 0 \
    --header-timeout "$HEADER_TIMEOUT" >"$WORK/serve.out" 2>"$WORK/serve.err" &
SERVER_PID=$!
for _ in $(seq 1 100); do
    grep -q "listening on" "$WORK/serve.out" 2>/dev/null && break
    sleep 0.1
done
ADDR="$(grep -o 'http://[^/]*' "$WORK/serve.out" | head -1 | sed 's#http://##')"
[ -n "$ADDR" ] || { cat "$WORK/serve.err" >&2; exit 1; }
echo "server: pid $SERVER_PID on $ADDR, database ${DB%%://*}, header timeout $HEADER_TIMEOUT, binary $WATTPRINT_BIN"

python3 - "$ADDR" "$ADMIN" "$VIEWER" "$SERVER_PID" "$SAMPLES" "$CONNS" "$HEADER_TIMEOUT" <<'PY'
import http.client, json, socket, sys, threading, time

addr, admin, viewer, pid, n_samples, conns, header_timeout = sys.argv[1:8]
host, port = addr.rsplit(":", 1)
port, n_samples, conns = int(port), int(n_samples), int(conns)
header_s = float(header_timeout.rstrip("s"))

def rss_kb(field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0

def request(method, path, token=None, body=None, timeout=60):
    c = http.client.HTTPConnection(host, port, timeout=timeout)
    headers = {"Connection": "close"}
    if token:
        headers["Authorization"] = "Bearer " + token
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    c.request(method, path, body=data, headers=headers)
    r = c.getresponse()
    out = r.read()
    c.close()
    return r.status, out

# ---- /health every 200 ms on a fresh connection, 1 s timeout ----
health = {"polls": 0, "late": 0, "max_s": 0.0, "stop": False}
def monitor():
    while not health["stop"]:
        t = time.monotonic()
        ok = False
        try:
            st, _ = request("GET", "/api/v1/health", timeout=1.0)
            ok = st == 200
        except Exception:
            pass
        dt = time.monotonic() - t
        health["polls"] += 1
        health["max_s"] = max(health["max_s"], dt)
        if not ok or dt > 1.0:
            health["late"] += 1
        time.sleep(0.2)
mon = threading.Thread(target=monitor, daemon=True)
mon.start()

def record(run_id, started="2025-03-10T12:00:00Z", ended="2025-03-10T13:00:00Z", kwh=0.5, kg=0.1):
    e = kwh
    return {
        "schema": "wattprint.run/1", "id": run_id, "project": "probe", "tags": {},
        "command": ["python", "train.py"], "started_at": started, "ended_at": ended,
        "duration_s": 3600.0, "status": "completed", "exit_code": 0,
        "host": {"hostname": "node-1", "cpu_model": "Xeon", "logical_cpus": 4, "ram_gb": 16.0, "gpus": []},
        "scope": "process", "interval_s": 1.0,
        "energy_kwh": {"cpu": e, "gpu": 0.0, "ram": 0.0, "other": 0.0, "dynamic": e, "static": 0.0,
                       "it": e, "infrastructure": 0.0, "facility": e, "total": e},
        "devices": [{"id": "cpu:0", "kind": "cpu", "method": "rapl", "name": "package-0",
                     "energy_kwh": e, "avg_power_w": 10.0, "machine_energy_kwh": e}],
        "methods": {"cpu": "rapl", "gpu": "none", "ram": "none"}, "pue": 1.0,
        "carbon_intensity": {"g_per_kwh": 200.0, "source": "probe"},
        "location": {"code": "FR", "name": "France", "known": True, "pue_source": "probe"},
        "emissions_kg": {"dynamic": kg, "static": 0.0, "infrastructure": 0.0, "embodied": 0.0,
                         "operational": kg, "total": kg},
        "equivalents": {"car_km": 0.0, "tree_months": 0.0, "flights_paris_london": 0.0,
                        "flights_paris_dublin": 0.0, "flights_new_york_san_francisco": 0.0,
                        "phone_charges": 0.0},
        "assumptions": [], "factors_version": "probe", "warnings": [], "samples": 0,
        "skipped_ticks": 0, "wattprint_version": "probe",
    }

def probe(name, f):
    t = time.monotonic()
    out = f()
    print(f"{name:<10} {time.monotonic() - t:6.1f} s  {out}  (RSS {rss_kb('VmRSS') // 1024} MiB)", flush=True)

def magnitude():
    codes = [request("POST", "/api/v1/runs", admin, record(f"huge-{i}", kwh=1e308, kg=1e308))[0] for i in range(2)]
    t, body = request("GET", "/api/v1/totals", viewer)
    b, _ = request("GET", "/api/v1/budgets?month=2025-03", viewer)
    total = json.loads(body).get("total", {}).get("energy_kwh") if t == 200 else None
    return f"uploads {codes}, totals {t} (energy_kwh {total}), budgets {b}"

def times():
    cases = {
        "year 9999": record("t-9999", started="9999-12-31T00:00:00Z", ended="9999-12-31T01:00:00Z"),
        "year 0000": record("t-0000", started="0000-01-01T00:00:00Z", ended="0000-01-01T01:00:00Z"),
        "leap second": record("t-leap", started="2016-12-31T23:59:60Z", ended="2017-01-01T01:00:00Z"),
        "ended before": record("t-back", started="2025-03-10T12:00:00Z", ended="2025-03-10T11:00:00Z"),
    }
    return ", ".join(f"{k} {request('POST', '/api/v1/runs', admin, v)[0]}" for k, v in cases.items())

def listing():
    st, _ = request("POST", "/api/v1/runs", admin, record("big"))
    assert st in (200, 201), st
    t0 = 0.0
    for start in range(0, n_samples, 10000):
        batch = [{"device_id": "gpu:0", "t0": float(i), "t1": float(i) + 1.0, "energy_j": 300.0}
                 for i in range(start, min(start + 10000, n_samples))]
        st, out = request("POST", "/api/v1/runs/big/samples", admin, {"samples": batch})
        assert st == 200, (st, out[:200])
    before = rss_kb("VmHWM")
    res = []
    def get():
        st, out = request("GET", "/api/v1/runs/big/samples", viewer)
        res.append((st, len(out)))
    ts = [threading.Thread(target=get) for _ in range(4)]
    for t in ts: t.start()
    for t in ts: t.join()
    codes = sorted(st for st, _ in res)
    biggest = max(n for _, n in res)
    walked, pages, path = 0, 0, "/api/v1/runs/big/samples?limit=50000"
    while path and pages < 1000:
        st, out = request("GET", path, viewer)
        if st != 200:
            break
        v = json.loads(out)
        walked += len(v["samples"])
        pages += 1
        c = v.get("next_cursor")
        path = f"/api/v1/runs/big/samples?limit=50000&cursor={c}" if c else None
    return (f"{n_samples} samples; 4 parallel reads: codes {codes}, largest answer {biggest // 1024} KiB; "
            f"walked {walked} in {pages} pages; peak RSS {before // 1024} -> {rss_kb('VmHWM') // 1024} MiB")

def hold(kind):
    socks = []
    for _ in range(conns):
        s = socket.create_connection((host, port), timeout=5)
        if kind == "headers":
            s.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        else:
            s.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
            s.recv(65536)
        socks.append(s)
    deadline = time.monotonic() + header_s + 5.0
    closed = set()
    while time.monotonic() < deadline and len(closed) < len(socks):
        for i, s in enumerate(socks):
            if i in closed:
                continue
            s.settimeout(0.01)
            try:
                if s.recv(65536) == b"":
                    closed.add(i)
            except socket.timeout:
                pass
            except OSError:
                closed.add(i)
        time.sleep(0.1)
    for s in socks:
        s.close()
    return f"{len(socks)} connections, {len(closed)} closed by the server within {header_s + 5:.0f} s"

probe("magnitude", magnitude)
probe("time", times)
probe("listing", listing)
probe("headers", lambda: hold("headers"))
probe("idle", lambda: hold("idle"))
health["stop"] = True
mon.join()
print(f"health     {health['polls']} polls, {health['late']} late or failed (> 1 s), slowest {health['max_s'] * 1000:.0f} ms: "
      + ("answered within 1 s throughout" if health["late"] == 0 else "NOT always within 1 s"))
print(f"peak RSS   {rss_kb('VmHWM') // 1024} MiB (VmHWM of the server process)")
PY
