#!/usr/bin/env bash
# The graph-model records of issue #21, resumable (every step skips what is finished and
# resumes what was interrupted; run it again after a stop). One job per core, one thread each:
#
#   LIPO_DATA_DIR=/path/to/data bash scripts/graph.sh single S       # one D-MPNN, seed S
#   LIPO_DATA_DIR=/path/to/data bash scripts/graph.sh member NAME K  # member K of an ensemble
#   LIPO_DATA_DIR=/path/to/data bash scripts/graph.sh ensemble NAME  # every member, then gather
#   bash scripts/graph.sh export        # models/logd.lipo, the shipped predictor, from "all"
#
# NAME is seed0, seed1, seed2 (5 members on five folds of the rows that are not test rows of
# the study's Table 1 split of that seed) or all (every molecule, --test-frac 0: the graph
# members of the shipped predictor). Every run uses chemprop's recipe, lipo's defaults for
# --model-kind graph: hidden 300, depth 3, 50 epochs, batch 50, lr 1e-3 with the noam schedule.
set -euo pipefail
cd "$(dirname "$0")/.."
data="${LIPO_DATA_DIR:-}/lipophilicity.csv"
[ "${1:-}" = export ] || [ -n "${LIPO_DATA_DIR:-}" ] || {
  echo "set LIPO_DATA_DIR to the folder holding lipophilicity.csv" >&2; exit 2; }
lipo="${LIPO_EXE:-./target/release/lipo}"
root=runs/study/graph
split() { # name: its seed and test fraction
  if [ "$1" = all ]; then echo "0 0"; else echo "${1#seed} 0.2"; fi
}
ensemble() { # name seed test-frac [flags]
  mkdir -p "$root/ensemble"
  "$lipo" finetune --model-kind graph --data "$data" --seed "$2" --test-frac "$3" --threads 1 \
    --ensemble 5 "${@:4}" --out "$root/ensemble/$1" >> "$root/ensemble/$1.log" 2>&1
}
case "${1:-}" in
  single) mkdir -p "$root"
          "$lipo" finetune --model-kind graph --data "$data" --seed "$2" --threads 1 \
            --out "$root/seed$2" >> "$root/seed$2.log" 2>&1 ;;
  member) ensemble "$2" $(split "$2") --member "$3" ;;
  ensemble) ensemble "$2" $(split "$2") ;;
  export) "$lipo" export --model "$root/ensemble/all" --out models/logd.lipo ;;
  *) echo "usage: scripts/graph.sh single S | member NAME K | ensemble NAME | export" >&2; exit 2 ;;
esac
