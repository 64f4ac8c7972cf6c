//! Training (fine-tuning, parameter-efficient fine-tuning, MLM) and ONNX export.

use std::ffi::{c_char, c_int, c_void};

use super::{guard, owned_string, str_arg, LipoStatus};
use crate::error::{Error, Result};

/// Receives the progress of `lipo_train`: `event_json` is one event as JSON, valid only during
/// the call, e.g. `{"event":"step","step":10,"total":400,"loss":0.52}`,
/// `{"event":"epoch","epoch":1,"train_loss":0.8,"valid_loss":0.7}`,
/// `{"event":"start","stage":"finetune","total":400}` or `{"event":"message","text":"..."}`.
/// Return 0 to go on, anything else to cancel: the job stops at its next safe point, keeps
/// its checkpoint (running the same job again resumes it) and `lipo_train` returns
/// `LIPO_STATUS_CANCELLED`. The callback runs on the thread that called `lipo_train`.
pub type LipoProgressCallback =
    Option<unsafe extern "C" fn(event_json: *const c_char, user_data: *mut c_void) -> c_int>;

/// Runs a training job described as JSON and waits for it to finish:
/// `{"command": "finetune" | "mlm", "out": RUN_DIR, "run": {...} | "config": "run.json",
///   "device": "auto", "threads": N, "export": "NAME.lipo"}`.
/// `run` has the schema of the `run.json` the command line writes (for fine-tuning:
/// `{"data": CSV, "init": {"model": DIR} | {"random": CONFIG}, "table": {...},
/// "train": {"epochs": 20, "lr": 1e-4, "seed": 0, "peft": {"method": "lora"}, ...}}`);
/// parameter-efficient fine-tuning is a fine-tuning run with `train.peft`. A finished run in
/// `out` is reused and an interrupted one resumed. `callback` may be NULL.
///
/// On success, `*report_json` (when `report_json` is not NULL) receives
/// `{"command", "out", "model", "bundle", "report"}`, where `report` is the run's metrics;
/// free it with `lipo_string_free`.
///
/// # Safety
/// `config_json` is a NUL-terminated string; `report_json` is NULL or points to writable
/// storage for a string pointer; `callback`, when not NULL, is safe to call with `user_data`.
#[no_mangle]
pub unsafe extern "C" fn lipo_train(
    config_json: *const c_char,
    callback: LipoProgressCallback,
    user_data: *mut c_void,
    report_json: *mut *mut c_char,
) -> LipoStatus {
    guard(|| {
        if !report_json.is_null() {
            *report_json = std::ptr::null_mut();
        }
        let config = str_arg(config_json, "config_json")?;
        let report = train(config, callback, user_data)?;
        if !report_json.is_null() {
            *report_json = owned_string(&report);
        }
        Ok(())
    })
}

#[cfg(feature = "train")]
unsafe fn train(
    config: &str,
    callback: LipoProgressCallback,
    user_data: *mut c_void,
) -> Result<String> {
    use crate::progress::Event;
    let job = crate::job::Job::from_json(config)?;
    let mut monitor = |event: &Event| -> bool {
        let Some(cb) = callback else {
            return true;
        };
        let text = serde_json::to_string(event).unwrap_or_default();
        let text = std::ffi::CString::new(text).unwrap_or_default();
        cb(text.as_ptr(), user_data) == 0
    };
    let report = crate::job::run(&job, &mut monitor)?;
    serde_json::to_string(&report).map_err(|e| Error::Training(format!("report: {e}")))
}

#[cfg(not(feature = "train"))]
unsafe fn train(
    _config: &str,
    _callback: LipoProgressCallback,
    _user_data: *mut c_void,
) -> Result<String> {
    Err(Error::Unsupported(
        "training needs lipo built with the `train` feature (libtorch)".into(),
    ))
}

/// Exports a trained model folder (for example `RUN_DIR/model` from `lipo_train`) as an ONNX
/// bundle folder at `out_path` (conventionally `NAME.lipo`), ready for `lipo_model_open`.
/// Models with LoRA or IA3 adapters are merged first (this needs the training feature).
///
/// # Safety
/// Both arguments are NUL-terminated strings.
#[no_mangle]
pub unsafe extern "C" fn lipo_export(
    model_dir: *const c_char,
    out_path: *const c_char,
) -> LipoStatus {
    guard(|| {
        let model = str_arg(model_dir, "model_dir")?;
        let out = str_arg(out_path, "out_path")?;
        export(model.as_ref(), out.as_ref())
    })
}

#[cfg(feature = "export")]
fn export(model: &std::path::Path, out: &std::path::Path) -> Result<()> {
    crate::export::export_model_dir(model, out).map(|_| ())
}

#[cfg(not(feature = "export"))]
fn export(_model: &std::path::Path, _out: &std::path::Path) -> Result<()> {
    Err(Error::Unsupported(
        "export needs lipo built with the `export` feature".into(),
    ))
}

/// Explains the prediction of `smiles` by the model in `model_dir` (a trained model folder,
/// e.g. `RUN_DIR/model`): the `top` training molecules of the run in `run_dir` with the
/// largest positive and negative influence on it (Koh & Liang, LiSSA inverse-HVP over the
/// last encoder layer and the head), and its `top` nearest training molecules by embedding.
/// The training gradients are cached in `RUN_DIR/explain/` on first use.
///
/// On success `*json` receives `{"smiles", "prediction", "label_name", "params",
/// "training_molecules", "projection", "lissa_scale", "lissa_converged", "positive": [{"row",
/// "smiles", "label", "influence", "removal_shift"}], "negative": [...], "neighbours":
/// [{"row", "smiles", "label", "distance"}]}`; free it with `lipo_string_free`. Returns
/// `LIPO_STATUS_UNSUPPORTED` in the inference-only build.
///
/// # Safety
/// `model_dir`, `run_dir` and `smiles` are NUL-terminated strings; `json` points to writable
/// storage for a string pointer.
#[no_mangle]
pub unsafe extern "C" fn lipo_explain(
    model_dir: *const c_char,
    run_dir: *const c_char,
    smiles: *const c_char,
    top: usize,
    json: *mut *mut c_char,
) -> LipoStatus {
    guard(|| {
        if json.is_null() {
            return Err(Error::param("json", "is NULL"));
        }
        *json = std::ptr::null_mut();
        let model = str_arg(model_dir, "model_dir")?;
        let run = str_arg(run_dir, "run_dir")?;
        let smiles = str_arg(smiles, "smiles")?;
        let text = explain(model.as_ref(), run.as_ref(), smiles, top)?;
        *json = owned_string(&text);
        Ok(())
    })
}

#[cfg(feature = "train")]
fn explain(
    model: &std::path::Path,
    run: &std::path::Path,
    smiles: &str,
    top: usize,
) -> Result<String> {
    use crate::explain::{ExplainConfig, Explainer};
    let cfg = ExplainConfig {
        top,
        ..ExplainConfig::default()
    };
    let mut quiet = |_: &crate::progress::Event| true;
    let explainer = Explainer::open(model, run, &cfg, tch::Device::Cpu, &mut quiet)?;
    let e = explainer.explain(smiles)?;
    serde_json::to_string(&e).map_err(|e| Error::Training(format!("explanation: {e}")))
}

#[cfg(not(feature = "train"))]
fn explain(
    _model: &std::path::Path,
    _run: &std::path::Path,
    _smiles: &str,
    _top: usize,
) -> Result<String> {
    Err(Error::Unsupported(
        "explain needs lipo built with the `train` feature (libtorch)".into(),
    ))
}
