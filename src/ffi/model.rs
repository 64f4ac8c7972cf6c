//! Prediction with an exported bundle (`NAME.lipo`) through ONNX Runtime.

use std::ffi::c_char;

use super::{guard, out_arg, owned_string, str_arg, LipoStatus};
use crate::error::{Error, Result};

/// An open model (an exported bundle). One handle may be used by any number of threads at
/// once: `lipo_predict` and `lipo_predict_batch` only read it. Close it with
/// `lipo_model_close` once no thread uses it any more.
pub struct LipoModel {
    #[cfg(feature = "infer")]
    predictor: crate::infer::Predictor,
}

#[cfg(feature = "infer")]
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct OpenOptions {
    #[serde(default = "one")]
    threads: usize,
    #[serde(default = "one")]
    sessions: usize,
    #[serde(default = "batch")]
    batch_size: usize,
    #[serde(default)]
    library: Option<std::path::PathBuf>,
}

#[cfg(feature = "infer")]
fn one() -> usize {
    1
}

#[cfg(feature = "infer")]
fn batch() -> usize {
    64
}

#[cfg(feature = "infer")]
fn open(path: &str, options: Option<&str>) -> Result<LipoModel> {
    let o: OpenOptions = serde_json::from_str(options.unwrap_or("{}"))
        .map_err(|e| Error::param("options_json", e.to_string()))?;
    if o.sessions == 0 || o.batch_size == 0 {
        return Err(Error::param(
            "options_json",
            "sessions and batch_size must be at least 1",
        ));
    }
    let predictor = crate::infer::Predictor::open(
        std::path::Path::new(path),
        &crate::infer::PredictorOptions {
            threads: o.threads,
            sessions: o.sessions,
            batch_size: o.batch_size,
            library: o.library,
        },
    )?;
    Ok(LipoModel { predictor })
}

#[cfg(not(feature = "infer"))]
fn open(_path: &str, _options: Option<&str>) -> Result<LipoModel> {
    Err(Error::Unsupported(
        "prediction needs lipo built with the `infer` feature".into(),
    ))
}

/// The model behind a handle, or an error naming the NULL parameter.
fn model_arg<'a>(model: *const LipoModel) -> Result<&'a LipoModel> {
    // SAFETY: the caller passes a handle from lipo_model_open that it has not closed.
    unsafe { model.as_ref() }.ok_or_else(|| Error::param("model", "is NULL"))
}

/// Opens the exported bundle at `path` (the `NAME.lipo` folder or its `model.onnx`) with
/// default options: one ONNX Runtime session with one thread, 64 molecules per run. On
/// success `*out` holds the new handle; on failure it is set to NULL.
///
/// # Safety
/// `path` is a NUL-terminated string; `out` points to writable storage for a handle.
#[no_mangle]
pub unsafe extern "C" fn lipo_model_open(
    path: *const c_char,
    out: *mut *mut LipoModel,
) -> LipoStatus {
    lipo_model_open_with(path, std::ptr::null(), out)
}

/// Opens a bundle like `lipo_model_open`, with options as JSON (NULL for defaults):
/// `{"threads": 1, "sessions": 1, "batch_size": 64, "library": "/path/libonnxruntime.so"}`.
/// `threads` is the intra-op thread count of each session (0: one per core); `sessions` is
/// how many predictions may run at the same moment from different threads (each session
/// holds its own copy of the weights); `library` is the ONNX Runtime library used when the
/// `ORT_DYLIB_PATH` environment variable is not set.
///
/// # Safety
/// `path` is a NUL-terminated string; `options_json` is NULL or a NUL-terminated string;
/// `out` points to writable storage for a handle.
#[no_mangle]
pub unsafe extern "C" fn lipo_model_open_with(
    path: *const c_char,
    options_json: *const c_char,
    out: *mut *mut LipoModel,
) -> LipoStatus {
    guard(|| {
        out_arg(out, "out")?;
        *out = std::ptr::null_mut();
        let path = str_arg(path, "path")?;
        let options = if options_json.is_null() {
            None
        } else {
            Some(str_arg(options_json, "options_json")?)
        };
        let model = open(path, options)?;
        *out = Box::into_raw(Box::new(model));
        Ok(())
    })
}

/// Releases a model handle. NULL is ignored. No other thread may be using the handle.
///
/// # Safety
/// `model` is NULL or a handle from `lipo_model_open` that has not been closed yet.
#[no_mangle]
pub unsafe extern "C" fn lipo_model_close(model: *mut LipoModel) {
    if !model.is_null() {
        // Dropping runs ONNX Runtime's destructors; keep a panic there inside the library.
        let _ =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(Box::from_raw(model))));
    }
}

/// Describes the model as JSON (task, label name, label mean and sd, classification
/// threshold, lipo version that exported it, vocabulary hash, quantization: "none" or
/// "int8", tta: random SMILES averaged per prediction, path). Free `*json` with
/// `lipo_string_free`.
///
/// # Safety
/// `model` is an open handle; `json` points to writable storage for a string pointer.
#[no_mangle]
pub unsafe extern "C" fn lipo_model_info(
    model: *const LipoModel,
    json: *mut *mut c_char,
) -> LipoStatus {
    guard(|| {
        out_arg(json, "json")?;
        *json = std::ptr::null_mut();
        let m = model_arg(model)?;
        *json = owned_string(&info_json(m)?);
        Ok(())
    })
}

#[cfg(feature = "infer")]
fn info_json(m: &LipoModel) -> Result<String> {
    let i = m.predictor.info();
    let task = match i.task {
        crate::model::Task::Regression => "regression",
        crate::model::Task::Classification => "classification",
        crate::model::Task::Encoder => "encoder",
    };
    Ok(serde_json::json!({
        "path": m.predictor.path(),
        "task": task,
        "label_name": i.label_name,
        "label_mean": i.label_mean,
        "label_sd": i.label_sd,
        "threshold": i.threshold,
        "lipo_version": i.lipo_version,
        "vocab_hash": i.vocab_hash,
        "quantization": i.quantization,
        "tta": i.tta,
    })
    .to_string())
}

#[cfg(not(feature = "infer"))]
fn info_json(_m: &LipoModel) -> Result<String> {
    open("", None).map(|_| String::new())
}

/// Predicts one molecule: logD in label units for a regression model, the probability of
/// class 1 for a classification model. A SMILES that cannot be read gives
/// `LIPO_STATUS_INVALID_SMILES` and a message naming it; `*value` is then NaN.
///
/// # Safety
/// `model` is an open handle; `smiles` a NUL-terminated string; `value` points to a double.
#[no_mangle]
pub unsafe extern "C" fn lipo_predict(
    model: *const LipoModel,
    smiles: *const c_char,
    value: *mut f64,
) -> LipoStatus {
    guard(|| {
        out_arg(value, "value")?;
        *value = f64::NAN;
        let m = model_arg(model)?;
        let smiles = str_arg(smiles, "smiles")?;
        *value = predict(m, &[smiles])?
            .pop()
            .ok_or_else(|| Error::Training("no prediction returned".into()))??;
        Ok(())
    })
}

/// Predicts `n` molecules in one call (batched by length). `values[i]` receives the
/// prediction of `smiles[i]`, or NaN when that molecule fails; `statuses[i]` (when
/// `statuses` is not NULL) receives its status, so one bad SMILES does not fail the rest.
///
/// Returns `LIPO_STATUS_OK` when the batch ran; `lipo_last_error()` then describes the first
/// molecule that failed, if any. With `statuses` NULL, a failed molecule makes the call
/// return its status instead. Other statuses mean the whole call failed.
///
/// # Safety
/// `smiles` points to `n` string pointers (each NULL or NUL-terminated); `values` to `n`
/// doubles; `statuses` is NULL or points to `n` `LipoStatus`.
#[no_mangle]
pub unsafe extern "C" fn lipo_predict_batch(
    model: *const LipoModel,
    smiles: *const *const c_char,
    n: usize,
    values: *mut f64,
    statuses: *mut LipoStatus,
) -> LipoStatus {
    let mut first_failure: Option<(LipoStatus, String)> = None;
    let status = guard(|| {
        let m = model_arg(model)?;
        if n == 0 {
            return Ok(());
        }
        if smiles.is_null() {
            return Err(Error::param("smiles", "is NULL"));
        }
        out_arg(values, "values")?;
        let values = std::slice::from_raw_parts_mut(values, n);
        values.fill(f64::NAN);
        let mut statuses =
            (!statuses.is_null()).then(|| std::slice::from_raw_parts_mut(statuses, n));
        let inputs: Vec<Result<&str>> = std::slice::from_raw_parts(smiles, n)
            .iter()
            .enumerate()
            .map(|(i, &p)| str_arg(p, &format!("smiles[{i}]")))
            .collect();
        let ok: Vec<&str> = inputs
            .iter()
            .filter_map(|r| r.as_ref().ok().copied())
            .collect();
        let mut predictions = predict(m, &ok)?.into_iter();
        for (i, input) in inputs.into_iter().enumerate() {
            let result = input.and_then(|_| {
                predictions
                    .next()
                    .unwrap_or_else(|| Err(Error::Training("missing prediction".into())))
            });
            let s = match result {
                Ok(v) => {
                    values[i] = v;
                    LipoStatus::Ok
                }
                Err(e) => {
                    let s = LipoStatus::of(&e);
                    if first_failure.is_none() {
                        first_failure = Some((s, format!("molecule {i}: {e}")));
                    }
                    s
                }
            };
            if let Some(st) = statuses.as_deref_mut() {
                st[i] = s;
            }
        }
        Ok(())
    });
    if status != LipoStatus::Ok {
        return status;
    }
    match first_failure {
        Some((s, message)) => {
            super::set_last_error(&message);
            if statuses.is_null() {
                s
            } else {
                LipoStatus::Ok
            }
        }
        None => LipoStatus::Ok,
    }
}

#[cfg(feature = "infer")]
fn predict(m: &LipoModel, smiles: &[&str]) -> Result<Vec<Result<f64>>> {
    m.predictor.predict(smiles)
}

#[cfg(not(feature = "infer"))]
fn predict(_m: &LipoModel, _smiles: &[&str]) -> Result<Vec<Result<f64>>> {
    open("", None).map(|_| Vec::new())
}
