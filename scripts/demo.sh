#!/usr/bin/env bash
# lipo's main job from a fresh clone: build, then run the whole study (Tables 1–3, the best
# model exported to ONNX and checked against tch, report.md + report.html). The data folder
# comes from LIPO_DATA_DIR (it must hold lipophilicity.csv and external.csv). Without
# arguments this is `lipo study --quick` (one seed, few epochs); arguments replace --quick and
# go to `lipo study` (e.g. `--seeds 0,1,2` for the full study). The study folder is
# runs/study-quick (or LIPO_OUT; runs/study for a full run).
set -euo pipefail
cd "$(dirname "$0")/.."
missing=0
for f in lipophilicity.csv external.csv; do
  if [ -z "${LIPO_DATA_DIR:-}" ] || [ ! -f "$LIPO_DATA_DIR/$f" ]; then missing=1; fi
done
if [ "$missing" = 1 ]; then
  echo "error: set LIPO_DATA_DIR to a folder holding" >&2
  echo "       lipophilicity.csv  MoleculeNet Lipophilicity (4200 rows, columns CMPD_CHEMBLID,exp,smiles;" >&2
  echo "                          with internet: ./target/release/lipo data fetch --dir \"\$LIPO_DATA_DIR\")" >&2
  echo "       external.csv       the study's external set (300 rows, columns SMILES,Label)" >&2
  exit 2
fi
source scripts/env.sh
cargo build --release
if [ "$#" -eq 0 ]; then
  set -- --quick
  out="${LIPO_OUT:-runs/study-quick}"
else
  out="${LIPO_OUT:-runs/study}"
fi
./target/release/lipo study --out "$out" "$@"
