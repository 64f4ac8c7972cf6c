//! Build script: give every lipo binary, test and shared library an rpath to libtorch's
//! `lib` folder (found by torch-sys, exported as `DEP_TCH_LIBTORCH_LIB`) so they run without
//! `LD_LIBRARY_PATH`, and keep `libtorch_cuda` linked (`--no-as-needed`) where the torch build
//! has it, so `Device::Cuda` works when a GPU is present.

use std::path::Path;

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") else {
        return;
    };
    println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
    // For reports: the libtorch folder, whose ../version.py names the torch version.
    println!("cargo:rustc-env=LIPO_LIBTORCH_LIB={lib}");
    let cuda = Path::new(&lib).join("libtorch_cuda.so");
    if cuda.exists() {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
        println!("cargo:rustc-link-arg=-Wl,-L{lib}");
        println!("cargo:rustc-link-arg=-ltorch_cuda");
        println!("cargo:rustc-link-arg=-Wl,--as-needed");
    }
}
