#!/usr/bin/env bash
# The Python package's tests: a venv under target/, maturin and pytest (and transformers, whose
# TrainingArguments/TrainerState/TrainerControl import without torch), the real wheel built from
# this checkout and installed, then pytest on python/tests with the CLI binary of this checkout
# (runs made from Python must show in `wattprint runs`). Run after the cargo tests (it reuses
# target/debug/wattprint; builds it otherwise). pytest exit 5 (no tests collected) fails too.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_INCREMENTAL=0
PY=${PYTHON:-python3}
VENV=target/pyvenv
echo "== python: venv ($VENV), maturin, pytest, transformers"
if [ ! -x "$VENV/bin/python" ]; then
    "$PY" -m venv "$VENV"
fi
"$VENV/bin/pip" install --quiet --disable-pip-version-check "maturin>=1.5,<2" "pytest>=7" "transformers>=4.40"
echo "== python: build and install the wheel"
rm -rf target/wheels
(cd python && "../$VENV/bin/maturin" build --quiet --out ../target/wheels)
"$VENV/bin/pip" install --quiet --disable-pip-version-check --force-reinstall --no-deps target/wheels/wattprint-*.whl
if [ ! -x target/debug/wattprint ]; then
    cargo build --quiet -p wattprint
fi
echo "== python: pytest python/tests"
export WATTPRINT_BIN="$PWD/target/debug/wattprint"
# run from the tests folder so `import wattprint` is the installed wheel, not python/wattprint
cd python/tests
set +e
"../../$VENV/bin/python" -m pytest -q -p no:cacheprovider --ignore=frameworks "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
    echo "pytest collected no tests: that is a failure" >&2
    exit 1
fi
exit "$rc"
