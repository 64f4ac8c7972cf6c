#!/usr/bin/env bash
# The three speed comparisons of lipo on this machine (whole processes, medians of RUNS runs):
#
#   1. Training threads: `lipo bench --train` (--threads 1, the adaptive default and every
#      core fixed, on the idle machine and beside one busy thread).
#   2. A light prediction: wall time and peak memory of `echo CCO | lipo predict` with the
#      bundle, through the light front (inference-only build) and through the full binary.
#   3. Batch-1 inference: LIMIT Lipophilicity molecules predicted one at a time with one
#      thread, the whole process timed, lipo (light front, the bundle) against PyTorch eager
#      (benches/eager_predict.py, or benches/eager_graph.py for graph members, which reads the
#      molecule graphs lipo writes beforehand, untimed) running the same member weights, on
#      the same molecules.
#
#   LIPO_DATA_DIR=/path/to/data bash benches/speed.sh BUNDLE MEMBER_MODEL_DIR...
#
# e.g. bash benches/speed.sh models/logd.lipo runs/study/ensemble/all/ensemble/member-*/model
# Needs the full build (cargo build --release) and GNU time; builds the light front. Run it on
# an otherwise idle machine. RUNS (default 3) and LIMIT (default 512) are read from the
# environment.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh >/dev/null
bundle="${1:?usage: benches/speed.sh BUNDLE MEMBER_MODEL_DIR...}"
shift
[ $# -ge 1 ] || { echo "give the bundle's member model folders for the eager reference" >&2; exit 2; }
data="${LIPO_DATA_DIR:?set LIPO_DATA_DIR to the folder holding lipophilicity.csv}/lipophilicity.csv"
runs="${RUNS:-3}"
limit="${LIMIT:-512}"
cargo build --release --quiet --bin lipo
cargo build --release --quiet --no-default-features --features infer --bin lipo \
  --target-dir target/infer-only
full=target/release/lipo
light=target/infer-only/release/lipo
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
head -n "$((limit + 1))" "$data" > "$tmp/molecules.csv"

# Median wall seconds and peak MB of a command over $runs runs (after one warm-up).
timed() {
  "$@" > /dev/null 2>&1
  for _ in $(seq "$runs"); do
    /usr/bin/time -f "%e %M" -o "$tmp/t" "$@" > /dev/null 2>&1
    cat "$tmp/t"
  done | sort -n | awk '{w[NR]=$1; m[NR]=$2} END {i=int((NR+1)/2); printf "%.3f %.0f\n", w[i], m[i]/1024}'
}

echo "## $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(date -u +%F)"
echo
echo "### 1. Training threads"
echo
"$full" bench --train --seconds "${SECONDS_PER_CASE:-20}" --data "$data" --out "$tmp/train.json" 2>/dev/null

echo
echo "### 2. One molecule with the bundle (echo CCO | lipo predict)"
echo
echo "| binary | wall s | peak MB |"
echo "|---|---|---|"
for exe in "$light" "$full"; do
  read -r w m < <(timed sh -c "echo CCO | $exe predict --model $bundle --input -")
  echo "| $exe | $w | $m |"
done

echo
echo "### 3. Batch 1, one thread, $limit molecules, whole process"
echo
read -r lw lm < <(timed "$light" --threads 1 predict --model "$bundle" --input "$tmp/molecules.csv" \
  --batch-size 1 --out "$tmp/lipo.csv")
if grep -q '"model_type": "dmpnn"' "$1/config.json"; then
  "$full" bench --model "$1" --data "$tmp/molecules.csv" --dump-graphs "$tmp/graphs.safetensors" \
    2>/dev/null
  read -r ew em < <(timed python benches/eager_graph.py "$tmp/graphs.safetensors" "$@" \
    --limit "$limit" --threads 1)
else
  read -r ew em < <(timed python benches/eager_predict.py "$tmp/molecules.csv" "$@" \
    --limit "$limit" --threads 1)
fi
echo "| engine | wall s | molecules/s | peak MB |"
echo "|---|---|---|---|"
echo "| lipo (light front, $(basename "$bundle")) | $lw | $(awk "BEGIN {printf \"%.1f\", $limit / $lw}") | $lm |"
echo "| PyTorch eager, the same $# member(s) | $ew | $(awk "BEGIN {printf \"%.1f\", $limit / $ew}") | $em |"
echo
echo "lipo / eager speed: $(awk "BEGIN {printf \"%.2f\", $ew / $lw}")×"
