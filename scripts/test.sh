#!/usr/bin/env bash
# The README's test command: what the tests need (Chromium, a throwaway PostgreSQL), then
# `cargo test --workspace`, then the Python package's tests (scripts/test-python.sh). Extra arguments go to cargo test (CI adds --locked).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/test-env.sh
echo "== tests (README: bash scripts/test.sh → cargo test --workspace)"
cargo test --workspace "$@"
echo "== python package (scripts/test-python.sh)"
bash scripts/test-python.sh
