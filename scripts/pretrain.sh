#!/usr/bin/env bash
# Pre-trains lipo's bundled default model (MoLFormer architecture, `small`: 4 layers x 256,
# 8 heads) by masked-language modelling on the MOSES training set, with the Lipophilicity
# molecules removed. Resumable: run it again after an interruption and it continues from
# pretrain/small/checkpoint with exactly the next batch. When it finishes, the model, its
# metrics and the run description are copied to models/lipo-small/, the default --init.
#
#   LIPO_DATA_DIR=/path/to/data bash scripts/pretrain.sh
set -euo pipefail
cd "$(dirname "$0")/.."
: "${LIPO_DATA_DIR:?set LIPO_DATA_DIR to the folder holding lipophilicity.csv}"
source scripts/env.sh
cargo build --release
corpus="$(bash scripts/corpus.sh)"
exclude="$(realpath "$LIPO_DATA_DIR")/lipophilicity.csv"
./target/release/lipo --threads "${LIPO_THREADS:-2}" mlm --corpus "$corpus" --exclude "$exclude" --arch small \
  --out pretrain/small --max-steps 16000 --batch-size 64 --lr 5e-4 --warmup-steps 500 \
  --eval-every 1000 --checkpoint-every 250 --seed 0
rm -rf models/lipo-small
mkdir -p models/lipo-small
cp pretrain/small/model/* models/lipo-small/
cp pretrain/small/metrics.json models/lipo-small/pretrain_metrics.json
cp pretrain/small/run.json models/lipo-small/pretrain_run.json
cp pretrain/small/mlm.png models/lipo-small/pretrain_curves.png
echo "bundled model written to models/lipo-small"
