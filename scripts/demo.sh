#!/usr/bin/env bash
# lipo's main job from a fresh clone: build, then fine-tune on MoleculeNet Lipophilicity and
# print test MSE/MAE/RMSE/R². The data folder comes from LIPO_DATA_DIR (it must hold
# lipophilicity.csv, columns CMPD_CHEMBLID,exp,smiles). Extra arguments go to `lipo finetune`.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${LIPO_DATA_DIR:-}" ] || [ ! -f "$LIPO_DATA_DIR/lipophilicity.csv" ]; then
  echo "error: set LIPO_DATA_DIR to a folder holding lipophilicity.csv (MoleculeNet Lipophilicity," >&2
  echo "       4200 rows, columns CMPD_CHEMBLID,exp,smiles)" >&2
  exit 2
fi
source scripts/env.sh
cargo build --release
out="${LIPO_OUT:-runs/demo}"
./target/release/lipo finetune --data "$LIPO_DATA_DIR/lipophilicity.csv" --out "$out" "$@"
