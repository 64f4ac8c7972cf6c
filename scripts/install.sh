#!/usr/bin/env bash
# Installs liblipo for C, C++ and Python hosts, and the lipo command, under PREFIX:
#   PREFIX/lib/liblipo.so, PREFIX/include/{lipo.h,lipo.hpp},
#   PREFIX/lib/pkgconfig/lipo.pc, PREFIX/lib/cmake/lipo/lipoConfig{,Version}.cmake,
#   PREFIX/lib/python/lipo/ (ctypes binding; add PREFIX/lib/python to PYTHONPATH),
#   PREFIX/bin/lipo: the light front (inference-only build, no libtorch; built here): `lipo
#     predict` with a bundle runs in it, every other command in
#   PREFIX/libexec/lipo/lipo: the full binary (target/release/lipo, when built),
#   PREFIX/share/lipo/logd.lipo: the shipped predictor, which `lipo predict` and
#     lipo_default_model_path() use when given no model.
#
#   bash scripts/install.sh PREFIX [LIBRARY]
#
# LIBRARY defaults to target/release/liblipo.so (build it with `cargo build --release`, or
# `cargo build --release --lib --no-default-features --features infer` for the
# inference-only library without libtorch).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
prefix="${1:?usage: install.sh PREFIX [LIBRARY]}"
lib="${2:-$root/target/release/liblipo.so}"
if [[ ! -f "$lib" ]]; then
  echo "install.sh: $lib does not exist; build it first with: cargo build --release" >&2
  exit 1
fi
version="$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/Cargo.toml" | head -1)"
mkdir -p "$prefix"/{lib/pkgconfig,lib/cmake/lipo,include,lib/python}
prefix="$(cd "$prefix" && pwd)"
install -m 0755 "$lib" "$prefix/lib/liblipo.so"
install -m 0644 "$root/include/lipo.h" "$root/bindings/cpp/lipo.hpp" "$prefix/include/"
rm -rf "$prefix/lib/python/lipo"
cp -r "$root/bindings/python/lipo" "$prefix/lib/python/lipo"
rm -rf "$prefix/lib/python/lipo/__pycache__"
sed -e "s|@PREFIX@|$prefix|g" -e "s|@VERSION@|$version|g" \
  "$root/cmake/lipo.pc.in" > "$prefix/lib/pkgconfig/lipo.pc"
sed -e "s|@VERSION@|$version|g" "$root/cmake/lipoConfigVersion.cmake.in" \
  > "$prefix/lib/cmake/lipo/lipoConfigVersion.cmake"
install -m 0644 "$root/cmake/lipoConfig.cmake" "$prefix/lib/cmake/lipo/"
# The light front and, beside it, the full binary it hands training commands to. env.sh
# gives the build the pinned ONNX Runtime library path.
source "$root/scripts/env.sh"
cargo build --release --no-default-features --features infer --bin lipo \
  --target-dir "$root/target/infer-only" --manifest-path "$root/Cargo.toml" --quiet
mkdir -p "$prefix/bin"
install -m 0755 "$root/target/infer-only/release/lipo" "$prefix/bin/lipo"
if [[ -f "$root/target/release/lipo" ]]; then
  mkdir -p "$prefix/libexec/lipo"
  install -m 0755 "$root/target/release/lipo" "$prefix/libexec/lipo/lipo"
else
  echo "install.sh: no full build (target/release/lipo): $prefix/bin/lipo predicts only" >&2
fi
if [[ -f "$root/models/logd.lipo/model.onnx" ]]; then
  rm -rf "$prefix/share/lipo/logd.lipo"
  mkdir -p "$prefix/share/lipo"
  cp -r "$root/models/logd.lipo" "$prefix/share/lipo/logd.lipo"
fi
echo "installed lipo $version in $prefix"
echo "  command: $prefix/bin/lipo (add $prefix/bin to PATH)"
echo "  C/C++: PKG_CONFIG_PATH=$prefix/lib/pkgconfig pkg-config --cflags --libs lipo"
echo "  CMake: -DCMAKE_PREFIX_PATH=$prefix, then find_package(lipo) and link lipo::lipo"
echo "  Python: PYTHONPATH=$prefix/lib/python python3 -c 'import lipo; print(lipo.version())'"
