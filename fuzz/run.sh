#!/usr/bin/env bash
# Runs lipo's cargo-fuzz targets (nightly Rust, `cargo install cargo-fuzz`), SECONDS each
# (default 600), two at a time, and prints each target's executions and crashes.
#   bash fuzz/run.sh [SECONDS] [TARGET ...]
# Seeds are in fuzz/seeds/TARGET (committed); the growing corpora and any crash files go to
# target/fuzz-work (not committed). The bundle and C-ABI targets need a bundle: a tiny model
# is fine-tuned for one epoch on generated molecules and exported once, with the lipo binary.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
secs=${1:-600}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(smiles tokenizer table model_folder bundle ffi_predict)
work=$PWD/target/fuzz-work
mkdir -p "$work"
if [ ! -f "$work/bundle.lipo/model.onnx" ]; then
  cargo build --release --bin lipo
  python3 -c "
import random
random.seed(1)
frags = ['C', 'O', 'N', 'c1ccccc1', 'C(Cl)', 'C(=O)', 'CC']
print('smiles,exp')
for i in range(64):
    s = ''.join(random.choice(frags) for _ in range(random.randint(2, 5)))
    print(f'{s},{len(s) / 5:.2f}')
" > "$work/toy.csv"
  target/release/lipo --threads 1 finetune --arch tiny --epochs 1 --data "$work/toy.csv" --out "$work/run"
  target/release/lipo export --model "$work/run/model" --out "$work/bundle.lipo"
fi
export LIPO_FUZZ_BUNDLE="$work/bundle.lipo"
cargo +nightly fuzz build
run_one() {
  local t=$1
  mkdir -p "$work/corpus/$t" "$work/artifacts/$t"
  cargo +nightly fuzz run "$t" "$work/corpus/$t" "fuzz/seeds/$t" -- \
    -max_total_time="$secs" -rss_limit_mb=4096 -timeout=20 -print_final_stats=1 \
    -artifact_prefix="$work/artifacts/$t/" > "$work/$t.log" 2>&1 || true
  local execs crashes
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$work/$t.log" | grep -o '[0-9]*$' || echo "?")
  crashes=$(find "$work/artifacts/$t" -type f | wc -l)
  echo "$t: ${execs} executions in ${secs} s, ${crashes} crash files (log: $work/$t.log)"
}
for ((k = 0; k < ${#targets[@]}; k += 2)); do
  run_one "${targets[k]}" &
  if [ $((k + 1)) -lt ${#targets[@]} ]; then run_one "${targets[k + 1]}" & fi
  wait
done
