//! Reading run folders back: the report of a finished run, its test rows, and its model
//! (trained again when its weights were not kept).

use std::path::{Path, PathBuf};

use tch::Device;

use crate::data::{Dataset, Split};
use crate::error::{Error, Result};
use crate::fsutil;
use crate::progress::{Event, Monitor};

use super::{files, finetune, FinetuneReport, FinetuneRun};

/// The report of `run` when `out` holds it finished (its run.json is `run` and its
/// metrics.json exists), whether or not its model was kept.
pub fn finished_record(run: &FinetuneRun, out: &Path) -> Result<Option<FinetuneReport>> {
    fsutil::finished_record(run, out, files::RUN, files::METRICS)
}

/// The test rows of the run in `run_dir` within `data`, after checking that `data` is the
/// table the run was trained on: the SMILES at the split's test rows must be those the run
/// recorded in its test predictions (or, for a run without them, the row count must fit).
/// Scoring another table's rows would give numbers about unrelated molecules.
pub fn test_rows_of(run_dir: &Path, data: &Dataset) -> Result<Vec<usize>> {
    let split: Split = fsutil::read_json(&run_dir.join(files::SPLIT))?;
    let differs = |reason: String| Error::BadFile {
        path: data.path.clone(),
        reason: format!(
            "{reason}: it is not the table the run in {} was trained on",
            run_dir.display()
        ),
    };
    if let Some(&bad) = split.test.iter().find(|&&r| r >= data.records.len()) {
        return Err(differs(format!("the split's row {bad} does not exist")));
    }
    let recorded = run_dir.join(files::TEST_PREDICTIONS);
    if recorded.is_file() {
        let mut rdr = csv::Reader::from_path(&recorded).map_err(|e| Error::BadFile {
            path: recorded.clone(),
            reason: e.to_string(),
        })?;
        let mut n = 0;
        for (row, rec) in split.test.iter().zip(rdr.records()) {
            let rec = rec.map_err(|e| Error::BadFile {
                path: recorded.clone(),
                reason: e.to_string(),
            })?;
            let theirs = rec.get(1).unwrap_or("");
            let ours = &data.records[*row];
            if ours.smiles != theirs {
                return Err(differs(format!(
                    "line {} holds {:?} where the run's test molecule was {theirs:?}",
                    ours.line, ours.smiles
                )));
            }
            n += 1;
        }
        if n != split.test.len() {
            return Err(Error::BadFile {
                path: recorded,
                reason: format!(
                    "{n} rows where the split has {} test rows",
                    split.test.len()
                ),
            });
        }
    }
    Ok(split.test)
}

/// The model folder of the finished run in `run_dir`. When its weights were not kept (a study
/// carried to another machine keeps only its runs' records), the run recorded in its
/// `run.json` is trained again into `run_dir/retrained` first; the flag says so. Retraining
/// repeats the same split, initialisation and data order; on another thread count the
/// numbers may differ in the last digits.
pub fn kept_or_retrained_model(
    run_dir: &Path,
    device: Device,
    monitor: &mut dyn Monitor,
) -> Result<(PathBuf, bool)> {
    let kept = run_dir.join(files::MODEL);
    if kept.join(crate::model::files::CONFIG).is_file() {
        return Ok((kept, false));
    }
    let run: FinetuneRun = fsutil::read_json(&run_dir.join(files::RUN))?;
    let again = run_dir.join(files::RETRAINED);
    monitor.event(&Event::Message {
        text: format!(
            "{}: weights not kept; training the run again in {}",
            run_dir.display(),
            again.display()
        ),
    });
    finetune(&run, device, &again, monitor)?;
    Ok((again.join(files::MODEL), true))
}

/// The epoch models a finished `keep_epochs` run kept (`epochs/epoch-<k>/`, k = 1, 2, …),
/// each with the learning rate of its epoch's last step: TracIn's checkpoints and weights.
pub fn epoch_checkpoints(run_dir: &Path) -> Result<Vec<(PathBuf, f64)>> {
    let run: super::FinetuneRun = fsutil::read_json(&run_dir.join(files::RUN))?;
    let report: super::FinetuneReport = fsutil::read_json(&run_dir.join(files::METRICS))?;
    let cfg = &run.train;
    if !cfg.keep_epochs {
        return Err(Error::param(
            "keep_epochs",
            format!("the run in {} did not keep its epochs", run_dir.display()),
        ));
    }
    let split: Split = fsutil::read_json(&run_dir.join(files::SPLIT))?;
    let steps = split.train.len().div_ceil(cfg.batch_size.max(1)) as u64;
    let total = steps * cfg.epochs as u64;
    (1..=report.history.len())
        .map(|k| {
            let dir = run_dir.join(files::EPOCHS).join(format!("epoch-{k}"));
            if !dir.is_dir() {
                return Err(Error::BadFile {
                    path: dir,
                    reason: "missing: the run's epoch models were removed".into(),
                });
            }
            let lr = cfg.schedule.rate(cfg.lr, k as u64 * steps - 1, total);
            Ok((dir, lr))
        })
        .collect()
}
