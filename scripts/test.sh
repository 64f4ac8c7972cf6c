#!/usr/bin/env bash
# Every test of lipo, from a fresh clone: sets up the pinned torch/onnxruntime venv (once per
# machine, in ~/.cache/lipo), then formatting, lints and the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
cargo fmt --all -- --check
cargo clippy --release --all-targets -- -D warnings
cargo test --release
echo "all lipo tests passed"
