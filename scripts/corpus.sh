#!/usr/bin/env bash
# Fetches lipo's MLM pre-training corpus from PyPI: the MOSES training set
# (moses/dataset/data/train.csv.gz, 1,584,663 ZINC molecules, MIT licence) inside the wheel of
# the package molsets 0.3.1. Prints the path of the corpus file.
set -euo pipefail
cache="${LIPO_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/lipo}/corpus"
out="$cache/moses_train.csv.gz"
if [ ! -f "$out" ]; then
  mkdir -p "$cache"
  python3 -m pip download --quiet --no-deps --dest "$cache" "molsets==0.3.1" >&2
  python3 - "$cache/molsets-0.3.1-py3-none-any.whl" "$out" <<'PY'
import sys, zipfile, shutil
with zipfile.ZipFile(sys.argv[1]) as z, z.open("moses/dataset/data/train.csv.gz") as src, open(sys.argv[2] + ".tmp", "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
  mv "$out.tmp" "$out"
  rm -f "$cache/molsets-0.3.1-py3-none-any.whl"
fi
echo "$out"
