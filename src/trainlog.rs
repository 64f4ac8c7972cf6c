//! The per-step and per-evaluation training log of a run folder (`log.jsonl`, one JSON object
//! per line): train loss, gradient norm, learning rate and steps/s of every optimisation
//! step; eval loss, runtime and steps/s of every evaluation — what the study logged to W&B.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// One optimisation step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    /// 1-based epoch.
    pub epoch: usize,
    /// Steps done so far (1-based).
    pub step: u64,
    /// Loss of this step's batch.
    pub train_loss: f64,
    /// Global gradient L2 norm before clipping.
    pub grad_norm: f64,
    /// Learning rate used.
    pub lr: f64,
    /// Seconds of this step (batch preparation, forward, backward, update).
    pub step_seconds: f64,
    /// `1 / step_seconds`.
    pub steps_per_s: f64,
}

/// One evaluation on the validation rows (after an epoch).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalRecord {
    /// 1-based epoch.
    pub epoch: usize,
    /// Steps done when evaluating.
    pub step: u64,
    /// Mean training loss of the epoch.
    pub train_loss: f64,
    /// Validation loss (the training loss function on the validation rows).
    pub eval_loss: f64,
    /// Seconds the evaluation took.
    pub eval_runtime_s: f64,
    /// Evaluation batches per second.
    pub eval_steps_per_s: f64,
    /// Validation molecules per second.
    pub eval_samples_per_s: f64,
}

/// A line of `log.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum LogRecord {
    /// An optimisation step.
    Step(StepRecord),
    /// An evaluation.
    Eval(EvalRecord),
}

impl LogRecord {
    /// The epoch the record belongs to.
    pub fn epoch(&self) -> usize {
        match self {
            LogRecord::Step(s) => s.epoch,
            LogRecord::Eval(e) => e.epoch,
        }
    }
}

/// Appends records to a run's `log.jsonl`.
#[derive(Debug)]
pub struct TrainLog {
    path: PathBuf,
    out: std::io::BufWriter<std::fs::File>,
}

impl TrainLog {
    /// Opens `path` keeping only the records of epochs `1..=keep_epochs` already in it (those
    /// a resumed run does not repeat); everything after is dropped.
    pub fn open(path: &Path, keep_epochs: usize) -> Result<TrainLog> {
        let kept: Vec<LogRecord> = if path.is_file() && keep_epochs > 0 {
            read_log(path)?
                .into_iter()
                .filter(|r| r.epoch() <= keep_epochs)
                .collect()
        } else {
            Vec::new()
        };
        let mut text = String::new();
        for r in &kept {
            text.push_str(&serde_json::to_string(r).expect("record serialises"));
            text.push('\n');
        }
        crate::fsutil::write_atomic(path, text.as_bytes())?;
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .map_err(|e| Error::io(path, e))?;
        Ok(TrainLog {
            path: path.to_path_buf(),
            out: std::io::BufWriter::new(file),
        })
    }

    /// Appends one record.
    pub fn write(&mut self, record: &LogRecord) -> Result<()> {
        let line = serde_json::to_string(record).expect("record serialises");
        writeln!(self.out, "{line}").map_err(|e| Error::io(&self.path, e))
    }

    /// Writes buffered records to the file.
    pub fn flush(&mut self) -> Result<()> {
        self.out.flush().map_err(|e| Error::io(&self.path, e))
    }
}

/// Reads every record of a `log.jsonl`; a bad line is an error naming file:line.
pub fn read_log(path: &Path) -> Result<Vec<LogRecord>> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str(line) {
            Ok(r) => out.push(r),
            // The last line of a job killed while writing it: dropped (its epoch is redone).
            Err(e) if i + 1 == lines.len() => tracing::warn!(
                "{}:{}: dropped a torn last line ({e})",
                path.display(),
                i + 1
            ),
            Err(e) => {
                return Err(Error::BadRow {
                    path: path.to_path_buf(),
                    line: i + 1,
                    reason: e.to_string(),
                })
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(epoch: usize, step: u64) -> LogRecord {
        LogRecord::Step(StepRecord {
            epoch,
            step,
            train_loss: 1.0,
            grad_norm: 0.5,
            lr: 1e-3,
            step_seconds: 0.1,
            steps_per_s: 10.0,
        })
    }

    #[test]
    fn reopening_keeps_finished_epochs_only() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("log.jsonl");
        let mut log = TrainLog::open(&p, 0).unwrap();
        for (e, s) in [(1, 1), (1, 2), (2, 3)] {
            log.write(&step(e, s)).unwrap();
        }
        log.flush().unwrap();
        drop(log);
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(
            text.starts_with(r#"{"kind":"step","epoch":1,"step":1,"#),
            "{text}"
        );
        let mut log = TrainLog::open(&p, 1).unwrap();
        log.write(&step(2, 3)).unwrap();
        log.flush().unwrap();
        assert_eq!(
            read_log(&p).unwrap(),
            vec![step(1, 1), step(1, 2), step(2, 3)]
        );
        // A torn last line (a job killed while writing it) is dropped, not fatal.
        let mut text = std::fs::read_to_string(&p).unwrap();
        text.push_str(r#"{"kind":"step","epo"#);
        std::fs::write(&p, text).unwrap();
        assert_eq!(read_log(&p).unwrap().len(), 3);
        assert!(TrainLog::open(&p, 1).is_ok());
        assert_eq!(read_log(&p).unwrap().len(), 2);
        assert!(TrainLog::open(&p, 0).is_ok());
        assert!(read_log(&p).unwrap().is_empty());
    }
}
