# shellcheck shell=bash
# Sourced by the README commands. Creates (once) and activates the Python venv that provides
# libtorch (PyPI torch 2.11.0, pinned by tch 0.24) and libonnxruntime (PyPI onnxruntime
# 1.31.1, loaded by ort at run time). The venv lives in a user cache folder keyed by these
# versions, outside the clone, so fresh clones reuse it instead of downloading 4.7 GB again.
# (No `set -e` here: this file is sourced, also by users' interactive shells.)

LIPO_TORCH_VERSION=2.11.0
LIPO_ORT_VERSION=1.31.1
LIPO_CACHE="${LIPO_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/lipo}"
LIPO_VENV="${LIPO_VENV:-$LIPO_CACHE/venv-torch${LIPO_TORCH_VERSION}-ort${LIPO_ORT_VERSION}}"

if [ ! -f "$LIPO_VENV/.lipo-ready" ]; then
  echo "lipo setup: creating $LIPO_VENV (torch==$LIPO_TORCH_VERSION, onnxruntime==$LIPO_ORT_VERSION; ~4.7 GB, once)" >&2
  if ! { mkdir -p "$(dirname "$LIPO_VENV")" &&
         python3 -m venv "$LIPO_VENV" &&
         "$LIPO_VENV/bin/pip" install --quiet "torch==$LIPO_TORCH_VERSION" "onnxruntime==$LIPO_ORT_VERSION" numpy &&
         "$LIPO_VENV/bin/python" -c "import torch, onnxruntime"; }; then
    echo "lipo setup: creating the venv failed (see pip's messages above)" >&2
    return 1 2>/dev/null || exit 1
  fi
  touch "$LIPO_VENV/.lipo-ready"
fi

export VIRTUAL_ENV="$LIPO_VENV"
export PATH="$LIPO_VENV/bin:$PATH"
export LIBTORCH_USE_PYTORCH=1
LIPO_SITE="$("$LIPO_VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
export ORT_DYLIB_PATH="${ORT_DYLIB_PATH:-$LIPO_SITE/onnxruntime/capi/libonnxruntime.so.$LIPO_ORT_VERSION}"
# torch's library folder (the binaries also carry it as their rpath).
export LIPO_TORCH_LIB="$LIPO_SITE/torch/lib"
