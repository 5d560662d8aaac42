#!/usr/bin/env bash
# One short check of wattprint's NVML reading on a machine with a real NVIDIA GPU (not a test:
# the test suite runs against a fake NVML). Prints, for GPU $GPU (default 0):
#   1. idle power: NVML's energy counter over IDLE_S seconds, and power integrated alongside;
#   2. under a known load (a matrix-multiply loop: PyTorch when importable, else a small CUDA
#      program built with nvcc), the energy counter against power integrated every 100 ms;
#   3. `wattprint run` on the same load: the energy it records for the GPU against the counter
#      difference read around it.
# Needs python3 (NVML is read through ctypes, no package) and the NVIDIA driver. Record the figures
# in docs/sensors-nvml.md ("On a real GPU").
#
#   bash scripts/gpu-check.sh            # GPU 0, 10 s idle, 20 s load
#   GPU=1 IDLE_S=30 LOAD_S=60 bash scripts/gpu-check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
GPU="${GPU:-0}"
IDLE_S="${IDLE_S:-10}"
LOAD_S="${LOAD_S:-20}"
WORK="$(mktemp -d /tmp/wattprint-gpu-check.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT

# NVML through ctypes: `nvml.py counter` prints the energy counter (mJ); `nvml.py sample S`
# prints "counter_J integrated_J seconds" over S seconds (power sampled every 100 ms).
cat >"$WORK/nvml.py" <<'EOF'
import ctypes, sys, time
lib = ctypes.CDLL("libnvidia-ml.so.1")
def ok(r, what):
    if r != 0:
        sys.exit("NVML %s failed: %d" % (what, r))
ok(lib.nvmlInit_v2(), "init")
h = ctypes.c_void_p()
ok(lib.nvmlDeviceGetHandleByIndex_v2(int(sys.argv[1]), ctypes.byref(h)), "handle")
def energy_mj():
    e = ctypes.c_ulonglong()
    ok(lib.nvmlDeviceGetTotalEnergyConsumption(h, ctypes.byref(e)), "total energy")
    return e.value
def power_w():
    p = ctypes.c_uint()
    ok(lib.nvmlDeviceGetPowerUsage(h, ctypes.byref(p)), "power")
    return p.value / 1000.0
if sys.argv[2] == "counter":
    print(energy_mj())
else:
    secs = float(sys.argv[3])
    e0, t0, p0 = energy_mj(), time.monotonic(), power_w()
    integ, t, p = 0.0, t0, p0
    while t - t0 < secs:
        time.sleep(0.1)
        t1, p1 = time.monotonic(), power_w()
        integ += 0.5 * (p + p1) * (t1 - t)
        t, p = t1, p1
    print("%.3f %.3f %.3f" % ((energy_mj() - e0) / 1000.0, integ, t - t0))
EOF
nvml() { python3 "$WORK/nvml.py" "$GPU" "$@"; }

# The load: a matrix-multiply loop for $1 seconds on GPU $GPU.
if python3 -c "import torch; assert torch.cuda.is_available()" 2>/dev/null; then
    cat >"$WORK/load.py" <<'EOF'
import sys, time, torch
dev = torch.device("cuda:%d" % int(sys.argv[1]))
a = torch.randn(8192, 8192, device=dev)
b = torch.randn(8192, 8192, device=dev)
end = time.monotonic() + float(sys.argv[2])
n = 0
while time.monotonic() < end:
    c = a @ b
    torch.cuda.synchronize(dev)
    n += 1
print("load: %d matmuls of 8192x8192 fp32" % n, file=sys.stderr)
EOF
    LOAD=(python3 "$WORK/load.py" "$GPU")
    LOAD_DESC="PyTorch matmul loop"
elif command -v nvcc >/dev/null; then
    cat >"$WORK/load.cu" <<'EOF'
#include <cstdio>
#include <cstdlib>
#include <ctime>
__global__ void fma_loop(float *x, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    float v = x[i];
    for (int k = 0; k < n; k++) v = v * 1.0000001f + 0.0000001f;
    x[i] = v;
}
int main(int argc, char **argv) {
    double secs = atof(argv[1]);
    float *x;
    cudaMalloc(&x, (1 << 24) * sizeof(float));
    time_t end = time(0) + (time_t)secs;
    while (time(0) < end) { fma_loop<<<(1 << 24) / 256, 256>>>(x, 4096); cudaDeviceSynchronize(); }
    cudaFree(x);
    return 0;
}
EOF
    nvcc -O2 -o "$WORK/load" "$WORK/load.cu"
    LOAD=(env CUDA_VISIBLE_DEVICES="$GPU" "$WORK/load")
    LOAD_DESC="CUDA FMA loop (nvcc)"
else
    echo "no load available (neither PyTorch with CUDA nor nvcc): only idle figures" >&2
    LOAD=()
fi

echo "== GPU $GPU: $(nvidia-smi -i "$GPU" --query-gpu=name,uuid,driver_version,power.limit --format=csv,noheader 2>/dev/null || echo '?')"
echo "== 1. idle, ${IDLE_S} s"
read -r ce ie s < <(nvml sample "$IDLE_S")
python3 -c "print('  counter %.1f J, integrated power %.1f J over %.1f s: idle %.1f W (counter) / %.1f W (power); difference %+.2f %%' % ($ce, $ie, $s, $ce/$s, $ie/$s, 100*($ie-$ce)/max($ce,1e-9)))"

if [ ${#LOAD[@]} -gt 0 ]; then
    echo "== 2. under load (${LOAD_DESC}), ${LOAD_S} s"
    "${LOAD[@]}" "$((LOAD_S + 2))" &
    LP=$!
    sleep 1
    read -r ce ie s < <(nvml sample "$LOAD_S")
    wait "$LP"
    python3 -c "print('  counter %.1f J, integrated power %.1f J over %.1f s: mean %.1f W; difference %+.2f %%' % ($ce, $ie, $s, $ce/$s, 100*($ie-$ce)/max($ce,1e-9)))"

    echo "== 3. wattprint run on the same load"
    BIN=target/release/wattprint
    [ -x "$BIN" ] || cargo build --release -q -p wattprint
    e0=$(nvml counter)
    WATTPRINT_HOME="$WORK/home" "$BIN" run --quiet --interval 1s --json "$WORK/run.json" -- "${LOAD[@]}" "$LOAD_S"
    e1=$(nvml counter)
    python3 - "$WORK/run.json" "$GPU" "$e0" "$e1" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
dev = next(d for d in r["devices"] if d["id"] == "gpu:%s" % sys.argv[2])
j = dev["machine_energy_kwh"] * 3.6e6
c = (int(sys.argv[4]) - int(sys.argv[3])) / 1000.0
print("  wattprint: %s %s, method %s, %.1f J over %.1f s (%.1f W mean)"
      % (dev["id"], dev.get("uuid", "?"), dev["method"], j, r["duration_s"], j / max(r["duration_s"], 1e-9)))
print("  counter around the run: %.1f J; wattprint / counter = %.4f (the counter also covers the"
      " tracker's start and end)" % (c, j / max(c, 1e-9)))
EOF
fi
