#!/bin/bash
# Runs the remaining Table 1 (augmented recipe) fine-tunes, two at a time, 1 thread each.
cd "$(dirname "$0")/../../../.."
source scripts/env.sh >/dev/null 2>&1
T=runs/study/table1-augmented
for job in random-seed0 random-seed1 random-seed2; do
  kind=${job%-seed*}; seed=${job##*seed}
  out=$T/seed$seed/$kind
  [ -f $out/metrics.json ] && continue
  while [ "$(pgrep -fc 'lipo --threads 1 finetune')" -ge 2 ]; do sleep 15; done
  echo "$(date -u +%H:%M:%S) start $job"
  setsid nohup ./target/release/lipo --threads 1 finetune --config $T/cfg/$job.json --out $out > runs/exp/t1aug-$job.log 2>&1 &
  sleep 20
done
