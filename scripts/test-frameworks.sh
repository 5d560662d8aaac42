#!/usr/bin/env bash
# Optional (not part of the test command): the framework callbacks in real training loops.
# Installs torch from PyPI (~3 GB: PyPI has only the CUDA build; it runs on CPU), transformers
# and lightning into target/pyvenv-frameworks, builds the
# wheel, then runs python/tests/frameworks/: a real Trainer(max_steps=3) on a tiny
# config-built model and a real Lightning fit, each with WattprintCallback.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_INCREMENTAL=0
VENV=target/pyvenv-frameworks
[ -x "$VENV/bin/python" ] || "${PYTHON:-python3}" -m venv "$VENV"
"$VENV/bin/pip" install --quiet torch
"$VENV/bin/pip" install --quiet "maturin>=1.5,<2" pytest transformers lightning accelerate
rm -rf target/wheels-frameworks
(cd python && "../$VENV/bin/maturin" build --quiet --out ../target/wheels-frameworks)
"$VENV/bin/pip" install --quiet --force-reinstall --no-deps target/wheels-frameworks/wattprint-*.whl
cd python/tests
"../../$VENV/bin/python" -m pytest -q -p no:cacheprovider frameworks "$@"
