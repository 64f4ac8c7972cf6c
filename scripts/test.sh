#!/usr/bin/env bash
# Every test of lipo, from a fresh clone: sets up the pinned torch/onnxruntime venv (once per
# machine, in ~/.cache/lipo), then formatting, lints and the test suite. Needs cc, c++,
# pkg-config and valgrind (Debian: build-essential pkg-config valgrind); cmake is optional.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
cargo fmt --all -- --check
cargo clippy --release --all-targets -- -D warnings
# The inference-only library (ort, no libtorch) for hosts that only predict, and the light
# `lipo` front of that build; tests/ffi.rs builds both in target/infer-only, runs the C
# example on the library under valgrind and the front against the full binary.
cargo clippy --release --lib --bin lipo --no-default-features --features infer \
  --target-dir target/infer-only -- -D warnings
cargo test --release --bin lipo --no-default-features --features infer \
  --target-dir target/infer-only
# liblipo.so, the lipo binary and the examples in target/release, as a user builds them.
cargo build --release --all-targets
# Unit, integration, CLI, snapshot, header (cbindgen), C/C++/Python/valgrind (tests/ffi.rs).
cargo test --release
echo "all lipo tests passed"
