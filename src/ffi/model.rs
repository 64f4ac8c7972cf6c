//! Prediction with an exported bundle (`NAME.lipo`) through ONNX Runtime.

use std::ffi::{c_char, c_int};

use super::{guard, out_arg, owned_string, str_arg, LipoStatus};
use crate::error::{Error, Result};

/// An open model (an exported bundle). One handle may be used by any number of threads at
/// once: the `lipo_predict*` functions only read it. Close it with
/// `lipo_model_close` once no thread uses it any more.
pub struct LipoModel {
    #[cfg(feature = "infer")]
    predictor: crate::infer::Predictor,
}

/// One molecule's prediction with what the bundle says about trusting it
/// (`lipo_predict_detail`, `lipo_predict_detail_batch`). An ensemble bundle
/// (`lipo finetune --ensemble`) fills all four fields; a single model's bundle gives `sd` and
/// `domain` NaN and `in_domain` -1. A molecule that failed has `value` NaN as well.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct LipoPrediction {
    /// logD in label units for a regression model, the probability of class 1 for a
    /// classification model; for an ensemble, the members' mean. NaN when the molecule failed.
    pub value: f64,
    /// Calibrated standard deviation of `value` (label units; ensembles): the members' spread
    /// scaled so that `value` ± 1.96 `sd` covered 95 % of the out-of-fold training molecules.
    /// NaN for a single model.
    pub sd: f64,
    /// Applicability-domain score (ensembles): the mean distance from the molecule's embedding
    /// to its nearest training molecules. NaN for a single model.
    pub domain: f64,
    /// 1 when `domain` is at most the bundle's domain threshold (the molecule resembles the
    /// training set), 0 when it is above (out of domain: trust `value` less), -1 for a single
    /// model or a molecule that failed.
    pub in_domain: c_int,
}

impl LipoPrediction {
    /// What a failed molecule (or one not predicted yet) holds.
    const NONE: LipoPrediction = LipoPrediction {
        value: f64::NAN,
        sd: f64::NAN,
        domain: f64::NAN,
        in_domain: -1,
    };
}

#[cfg(feature = "infer")]
impl From<crate::infer::Prediction> for LipoPrediction {
    fn from(p: crate::infer::Prediction) -> Self {
        LipoPrediction {
            value: p.value,
            sd: p.sd.unwrap_or(f64::NAN),
            domain: p.domain.unwrap_or(f64::NAN),
            in_domain: p.in_domain.map_or(-1, c_int::from),
        }
    }
}

/// What an ensemble bundle says about itself (`lipo_model_ensemble_info`). For a single
/// model's bundle `members` is 0, the counts are 0 and the numbers NaN.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct LipoEnsembleInfo {
    /// Members whose mean is the prediction (0: not an ensemble).
    pub members: usize,
    /// Factor that gives the calibrated `sd`: applied to the domain score, or for ensembles
    /// gathered before lipo 0.1's domain calibration to the members' sample sd (the JSON of
    /// `lipo_model_info` says which: `sd_method`).
    pub sd_scale: f64,
    /// Domain score above which a molecule is out of domain (the 95th percentile of the
    /// training molecules' leave-one-out scores).
    pub domain_threshold: f64,
    /// Nearest training molecules behind the domain score.
    pub domain_neighbours: usize,
    /// Molecules the members trained on (all folds).
    pub training_molecules: usize,
    /// Out-of-fold RMSE of the members on the training molecules (label units).
    pub out_of_fold_rmse: f64,
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

/// Finds the default bundle, for hosts given no model: the path in the `LIPO_DEFAULT_BUNDLE`
/// environment variable when it is set, else lipo's shipped lipophilicity predictor
/// (`models/logd.lipo` of the source tree the library was built from; an ensemble) when it is
/// there. On success `*path` receives the path, to pass to `lipo_model_open` and then free
/// with `lipo_string_free`; when there is no default bundle the call returns
/// `LIPO_STATUS_MODEL` (the message says what to set) and `*path` is NULL. The path is not
/// opened here: a `LIPO_DEFAULT_BUNDLE` that names no bundle fails in `lipo_model_open`.
///
/// # Safety
/// `path` points to writable storage for a string pointer.
#[no_mangle]
pub unsafe extern "C" fn lipo_default_model_path(path: *mut *mut c_char) -> LipoStatus {
    guard(|| {
        out_arg(path, "path")?;
        *path = std::ptr::null_mut();
        let found = crate::bundle::default_bundle().ok_or_else(|| {
            Error::model(
                crate::bundle::SHIPPED,
                "the shipped predictor is not there and LIPO_DEFAULT_BUNDLE is not set, so there \
                 is no default bundle (set LIPO_DEFAULT_BUNDLE to a bundle's path, or open a \
                 bundle by its path)",
            )
        })?;
        let text = found.to_str().ok_or_else(|| {
            Error::param(
                "LIPO_DEFAULT_BUNDLE",
                format!("{} is not valid UTF-8", found.display()),
            )
        })?;
        *path = owned_string(text);
        Ok(())
    })
}

/// Describes the model as JSON: `task`, `label_name`, `label_mean` and `label_sd`,
/// classification `threshold`, `lipo_version` that exported it, `vocab_hash`,
/// `quantization` ("none", "int8" or "float16"), `tta` (random SMILES averaged per
/// prediction), `canonical` (SMILES rewritten in lipo's canonical form before encoding),
/// `graph` (true for a graph model, which reads molecule graphs made from the SMILES), `path`,
/// and for an ensemble bundle `members`, `sd_method` ("domain" or "spread": what `sd_scale`
/// multiplies), `sd_scale`, `domain_threshold`, `domain_neighbours`, `training_molecules` and
/// `out_of_fold_rmse` (as in `LipoEnsembleInfo`; these seven keys are always present and
/// null for a single model). Free
/// `*json` with `lipo_string_free`.
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
    let e = i.ensemble.as_ref();
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
        "canonical": i.canonical,
        "members": e.map(|e| e.members),
        "sd_method": e.map(|e| e.sd_method.clone()),
        "sd_scale": e.map(|e| e.sd_scale),
        "graph": i.graph,
        "domain_threshold": e.map(|e| e.domain_threshold),
        "domain_neighbours": e.map(|e| e.domain_neighbours),
        "training_molecules": e.map(|e| e.training_molecules),
        "out_of_fold_rmse": e.map(|e| e.out_of_fold_rmse),
    })
    .to_string())
}

#[cfg(not(feature = "infer"))]
fn info_json(_m: &LipoModel) -> Result<String> {
    open("", None).map(|_| String::new())
}

/// Fills `*info` with what an ensemble bundle says about itself (the same numbers as the
/// ensemble keys of `lipo_model_info`, without JSON). A single model's bundle is not an
/// error: `info->members` is then 0.
///
/// # Safety
/// `model` is an open handle; `info` points to a writable `LipoEnsembleInfo`.
#[no_mangle]
pub unsafe extern "C" fn lipo_model_ensemble_info(
    model: *const LipoModel,
    info: *mut LipoEnsembleInfo,
) -> LipoStatus {
    guard(|| {
        out_arg(info, "info")?;
        *info = LipoEnsembleInfo {
            members: 0,
            sd_scale: f64::NAN,
            domain_threshold: f64::NAN,
            domain_neighbours: 0,
            training_molecules: 0,
            out_of_fold_rmse: f64::NAN,
        };
        let m = model_arg(model)?;
        if let Some(e) = ensemble_info(m)? {
            *info = e;
        }
        Ok(())
    })
}

#[cfg(feature = "infer")]
fn ensemble_info(m: &LipoModel) -> Result<Option<LipoEnsembleInfo>> {
    Ok(m.predictor
        .info()
        .ensemble
        .as_ref()
        .map(|e| LipoEnsembleInfo {
            members: e.members,
            sd_scale: e.sd_scale,
            domain_threshold: e.domain_threshold,
            domain_neighbours: e.domain_neighbours,
            training_molecules: e.training_molecules,
            out_of_fold_rmse: e.out_of_fold_rmse,
        }))
}

#[cfg(not(feature = "infer"))]
fn ensemble_info(_m: &LipoModel) -> Result<Option<LipoEnsembleInfo>> {
    open("", None).map(|_| None)
}

/// Predicts one molecule: logD in label units for a regression model, the probability of
/// class 1 for a classification model (for an ensemble, the members' mean). A SMILES that
/// cannot be read gives `LIPO_STATUS_INVALID_SMILES` and a message naming it; `*value` is then
/// NaN.
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
        *value = only(predict(m, &[smiles])?)?;
        Ok(())
    })
}

/// Predicts one molecule like `lipo_predict`, with the calibrated sd and the applicability
/// domain when the bundle is an ensemble (see `LipoPrediction`). A SMILES that cannot be read
/// gives `LIPO_STATUS_INVALID_SMILES` and a message naming it; `*out` then holds no number
/// (`value`, `sd` and `domain` NaN, `in_domain` -1), as after any other failure once `out` is
/// known not to be NULL.
///
/// # Safety
/// `model` is an open handle; `smiles` a NUL-terminated string; `out` points to a writable
/// `LipoPrediction`.
#[no_mangle]
pub unsafe extern "C" fn lipo_predict_detail(
    model: *const LipoModel,
    smiles: *const c_char,
    out: *mut LipoPrediction,
) -> LipoStatus {
    guard(|| {
        out_arg(out, "out")?;
        *out = LipoPrediction::NONE;
        let m = model_arg(model)?;
        let smiles = str_arg(smiles, "smiles")?;
        *out = only(predict_detail(m, &[smiles])?)?;
        Ok(())
    })
}

/// The only result of a one-molecule prediction.
fn only<T>(mut results: Vec<Result<T>>) -> Result<T> {
    results
        .pop()
        .ok_or_else(|| Error::Training("no prediction returned".into()))?
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
    run_batch(
        model,
        smiles,
        n,
        (values, "values"),
        f64::NAN,
        statuses,
        predict,
    )
}

/// Predicts `n` molecules in one call like `lipo_predict_batch`, with the calibrated sd and
/// the applicability domain when the bundle is an ensemble: `out[i]` receives the
/// `LipoPrediction` of `smiles[i]` (no number, as after a failed `lipo_predict_detail`, when
/// that molecule fails) and `statuses[i]` (when `statuses` is not NULL) its status.
///
/// Returns `LIPO_STATUS_OK` when the batch ran; `lipo_last_error()` then describes the first
/// molecule that failed, if any. With `statuses` NULL, a failed molecule makes the call
/// return its status instead. Other statuses mean the whole call failed.
///
/// # Safety
/// `smiles` points to `n` string pointers (each NULL or NUL-terminated); `out` to `n`
/// `LipoPrediction`; `statuses` is NULL or points to `n` `LipoStatus`.
#[no_mangle]
pub unsafe extern "C" fn lipo_predict_detail_batch(
    model: *const LipoModel,
    smiles: *const *const c_char,
    n: usize,
    out: *mut LipoPrediction,
    statuses: *mut LipoStatus,
) -> LipoStatus {
    run_batch(
        model,
        smiles,
        n,
        (out, "out"),
        LipoPrediction::NONE,
        statuses,
        predict_detail,
    )
}

/// Predicts molecules: an error per molecule inside, the call's error outside.
type PredictFn<T> = fn(&LipoModel, &[&str]) -> Result<Vec<Result<T>>>;

/// The body of the batch functions: `run` predicts the molecules whose strings are usable,
/// `out` (with its parameter name) receives one result per molecule, `none` where one failed.
///
/// # Safety
/// As for `lipo_predict_batch`, with `out` pointing to `n` values of `T`.
unsafe fn run_batch<T: Copy>(
    model: *const LipoModel,
    smiles: *const *const c_char,
    n: usize,
    (out, out_name): (*mut T, &str),
    none: T,
    statuses: *mut LipoStatus,
    run: PredictFn<T>,
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
        out_arg(out, out_name)?;
        let out = std::slice::from_raw_parts_mut(out, n);
        out.fill(none);
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
        let mut predictions = run(m, &ok)?.into_iter();
        for (i, input) in inputs.into_iter().enumerate() {
            let result = input.and_then(|_| {
                predictions
                    .next()
                    .unwrap_or_else(|| Err(Error::Training("missing prediction".into())))
            });
            let s = match result {
                Ok(v) => {
                    out[i] = v;
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

#[cfg(feature = "infer")]
fn predict_detail(m: &LipoModel, smiles: &[&str]) -> Result<Vec<Result<LipoPrediction>>> {
    Ok(m.predictor
        .predict_detail(smiles)?
        .into_iter()
        .map(|r| r.map(LipoPrediction::from))
        .collect())
}

#[cfg(not(feature = "infer"))]
fn predict(_m: &LipoModel, _smiles: &[&str]) -> Result<Vec<Result<f64>>> {
    open("", None).map(|_| Vec::new())
}

#[cfg(not(feature = "infer"))]
fn predict_detail(_m: &LipoModel, _smiles: &[&str]) -> Result<Vec<Result<LipoPrediction>>> {
    open("", None).map(|_| Vec::new())
}
