//! Loading ONNX Runtime (`libonnxruntime`, opened at run time) and its process-wide
//! environment.
//!
//! The library is looked for, in order: the `ORT_DYLIB_PATH` environment variable; the path
//! the caller configures ([`PredictorOptions::library`](super::PredictorOptions::library));
//! the `ORT_DYLIB_PATH` that was set when lipo was built (`scripts/env.sh` sets it to the
//! pinned PyPI `onnxruntime` wheel's library); and finally `libonnxruntime.so` on the
//! system's library search path. ONNX Runtime is loaded once per process: the first
//! successful load wins.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use ort::environment::Environment;

use crate::error::{Error, Result};

/// The environment variable naming the ONNX Runtime library.
pub const LIBRARY_VAR: &str = "ORT_DYLIB_PATH";

/// `ORT_DYLIB_PATH` at build time, the default when neither the variable nor a configured
/// path is given at run time.
pub const BUILD_DEFAULT: Option<&str> = option_env!("ORT_DYLIB_PATH");

/// Library name searched on the system path as a last resort.
const SYSTEM_NAME: &str = "libonnxruntime.so";

static ENVIRONMENT: Mutex<Option<Environment>> = Mutex::new(None);

fn hint() -> String {
    format!(
        "set {LIBRARY_VAR} to the path of libonnxruntime (ONNX Runtime 1.31, e.g. \
         site-packages/onnxruntime/capi/libonnxruntime.so.1.31.1 from \
         `pip install onnxruntime==1.31.1`)"
    )
}

/// Where ONNX Runtime will be loaded from, given an optional configured path; an error
/// names `ORT_DYLIB_PATH` when the variable (or the configured path) points nowhere.
pub fn library_path(configured: Option<&Path>) -> Result<PathBuf> {
    if let Some(v) = std::env::var_os(LIBRARY_VAR).filter(|v| !v.is_empty()) {
        let p = PathBuf::from(v);
        if !p.is_file() {
            return Err(Error::OnnxRuntime(format!(
                "{LIBRARY_VAR}={} does not exist; {}",
                p.display(),
                hint()
            )));
        }
        return Ok(p);
    }
    if let Some(p) = configured {
        if !p.is_file() {
            return Err(Error::OnnxRuntime(format!(
                "the configured ONNX Runtime library {} does not exist ({LIBRARY_VAR} is not set); {}",
                p.display(),
                hint()
            )));
        }
        return Ok(p.to_path_buf());
    }
    if let Some(p) = BUILD_DEFAULT.map(PathBuf::from).filter(|p| p.is_file()) {
        return Ok(p);
    }
    Ok(PathBuf::from(SYSTEM_NAME))
}

/// The process's ONNX Runtime environment, loading the library on first use.
pub fn environment(configured: Option<&Path>) -> Result<Environment> {
    let mut env = ENVIRONMENT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(e) = env.as_ref() {
        return Ok(e.clone());
    }
    let path = library_path(configured)?;
    let builder = ort::init_from(&path).map_err(|e| {
        Error::OnnxRuntime(format!(
            "cannot load ONNX Runtime from {}: {e}; {}",
            path.display(),
            hint()
        ))
    })?;
    let e = builder
        .with_name("lipo")
        .with_telemetry(false)
        .build()
        .map_err(|e| Error::OnnxRuntime(format!("creating the environment: {e}")))?;
    *env = Some(e.clone());
    Ok(e)
}
