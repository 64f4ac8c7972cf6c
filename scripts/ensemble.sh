#!/usr/bin/env bash
# The MoLFormer ensemble records of issue #18 and its bundle models/logd-molformer.lipo (the
# shipped predictor models/logd.lipo is the graph ensemble of scripts/graph.sh), resumable:
# every step skips what is finished and resumes what was interrupted (run it again after a
# stop). One job per core, one thread each:
#
#   LIPO_DATA_DIR=/path/to/data bash scripts/ensemble.sh all     # shipped model, then seed 2
#   LIPO_DATA_DIR=/path/to/data bash scripts/ensemble.sh seeds   # seed 0, then seed 1
#   LIPO_DATA_DIR=/path/to/data bash scripts/ensemble.sh export  # models/logd-molformer.lipo
#
# Finer steps, to share the members of one ensemble between two processes (never run one
# member in two): `mlm NAME` (NAME: all, seed0, seed1, seed2) and `member NAME K`.
#
# Each ensemble starts from a domain MLM of models/lipo-small on the ensemble's own molecules
# (20 epochs, --augment 0.5; seed s: the rows that are not test rows of seed s, written to
# runs/study/ensemble/seedS/domain_corpus.csv; "all": every row), then trains five members
# (30 epochs, --augment 0.5) on five folds. Seeds 0–2 hold out the test rows of the study's
# Table 1 split of that seed; "all" trains on every molecule (--test-frac 0).
set -euo pipefail
cd "$(dirname "$0")/.."
data="${LIPO_DATA_DIR:?set LIPO_DATA_DIR to the folder holding lipophilicity.csv}/lipophilicity.csv"
lipo="${LIPO_EXE:-./target/release/lipo}"
root=runs/study/ensemble
mlm() { # name corpus
  [ -f "$root/$1/domain-mlm/metrics.json" ] && return 0
  "$lipo" mlm --corpus "$2" --init models/lipo-small --epochs 20 --batch-size 32 --lr 1e-4 \
    --warmup-steps 50 --valid-size 150 --eval-every 100 --checkpoint-every 200 --augment 0.5 \
    --threads 1 --out "$root/$1/domain-mlm" >> "$root/$1/domain-mlm.log" 2>&1
}
ensemble() { # name seed test-frac [finetune flags, e.g. --member K]
  "$lipo" finetune --data "$data" --init "$root/$1/domain-mlm/model" --seed "$2" \
    --test-frac "$3" --epochs 30 --augment 0.5 --threads 1 --ensemble 5 "${@:4}" \
    --out "$root/$1/ensemble" >> "$root/$1/ensemble.log" 2>&1
}
corpus() { # name: the MLM corpus of an ensemble
  if [ "$1" = all ]; then echo "$data"; else echo "$root/$1/domain_corpus.csv"; fi
}
split() { # name: its seed and test fraction
  if [ "$1" = all ]; then echo "0 0"; else echo "${1#seed} 0.2"; fi
}
case "${1:-}" in
  all) mkdir -p "$root/all"
       mlm all "$data"; ensemble all 0 0
       mlm seed2 "$root/seed2/domain_corpus.csv"; ensemble seed2 2 0.2 ;;
  seeds) mlm seed0 "$root/seed0/domain_corpus.csv"; ensemble seed0 0 0.2
         mlm seed1 "$root/seed1/domain_corpus.csv"; ensemble seed1 1 0.2 ;;
  mlm) mlm "$2" "$(corpus "$2")" ;;
  member) ensemble "$2" $(split "$2") --member "$3" ;;
  export) "$lipo" export --model "$root/all/ensemble" --out models/logd-molformer.lipo --quantize float16 --canonical ;;
  *) echo "usage: scripts/ensemble.sh all|seeds|export|mlm NAME|member NAME K" >&2; exit 2 ;;
esac
