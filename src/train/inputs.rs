//! A run's inputs: its table read with the starting model's tokenizer, the seed's split, the
//! extra training rows, and the training targets.

use std::path::Path;

use crate::data::{self, Dataset, Split};
use crate::error::{Error, Result};
use crate::fsutil;
use crate::model::Task;
use crate::progress::{Event, Monitor};
use crate::tokenizer::SmilesTokenizer;

use super::evaluate::classes_of;
use super::{files, ExtraReport, ExtraTable, FinetuneRun, InitFrom};

/// Everything a run trains and evaluates on.
pub(super) struct Inputs {
    /// The starting model's tokenizer.
    pub tokenizer: SmilesTokenizer,
    /// The table, with the used extra rows appended.
    pub data: Dataset,
    /// Train, validation and test rows of `data` (extra rows are in train).
    pub split: Split,
    /// What happened to the extra rows (runs with an extra table).
    pub extra: Option<ExtraReport>,
    /// The training targets.
    pub targets: Targets,
    /// The rows each epoch's batches are drawn from, in order: the training rows, except that
    /// with `step_seeds` the rows `exclude_rows` left out stay in this list (the epoch loop
    /// drops them from their batches), so that the other batches stay as they were.
    pub batch_order: Vec<usize>,
}

/// The training target of every row and the train-split statistics behind it.
pub(super) struct Targets {
    /// Standardised labels (regression) or 0/1 classes (classification), by row.
    pub values: Vec<f64>,
    /// Train-split label mean.
    pub mean: f64,
    /// Train-split label sd (1 when the labels do not vary).
    pub sd: f64,
    /// Label threshold that made the classes (classification with `binarize`).
    pub threshold: Option<f64>,
    /// Mean target of the training rows (classification: the share of class 1).
    pub train_positive_share: f64,
}

impl Inputs {
    /// Reads and splits the run's table (writing `split.json`), adds the extra rows (writing
    /// `extra.json`) and computes the training targets.
    pub fn load(run: &FinetuneRun, out: &Path, monitor: &mut dyn Monitor) -> Result<Inputs> {
        let cfg = &run.train;
        let tokenizer = tokenizer_of(&run.init)?.with_canonical(cfg.canonical);
        let mut data = load_data(run, &tokenizer)?;
        let n = data.records.len();
        let mut split = match &run.fold {
            Some(f) => Split::fold(n, f.split_seed, cfg.test_frac, f.index, f.count)?,
            None => Split::new(n, cfg.seed, cfg.test_frac, cfg.valid_frac)?,
        };
        let full_train = split.train.clone();
        if !cfg.exclude_rows.is_empty() {
            if let Some(&r) = cfg.exclude_rows.iter().find(|&&r| r >= n) {
                return Err(Error::param(
                    "exclude_rows",
                    format!("row {r} is beyond the table's {n} rows"),
                ));
            }
            split.train.retain(|r| !cfg.exclude_rows.contains(r));
        }
        if split.valid.is_empty() {
            return Err(Error::param(
                "valid_frac",
                "fine-tuning needs validation rows to choose the best epoch",
            ));
        }
        fsutil::write_json(&out.join(files::SPLIT), &split)?;
        let pruned_len = split.train.len();
        let extra = match &run.extra {
            Some(x) => Some(join_extra(
                &mut data, &mut split, x, &tokenizer, out, monitor,
            )?),
            None => None,
        };
        let batch_order = if cfg.step_seeds {
            full_train
                .into_iter()
                .chain(split.train[pruned_len..].iter().copied())
                .collect()
        } else {
            split.train.clone()
        };
        // Under step_seeds the label statistics are those of the run without exclusions, so
        // that leaving rows out changes nothing but the batches that held them.
        let targets = Targets::of(run, &data, &batch_order)?;
        Ok(Inputs {
            batch_order,
            tokenizer,
            data,
            split,
            extra,
            targets,
        })
    }

    /// Token ids of `rows` (the SMILES as given).
    pub fn seqs(&self, rows: &[usize]) -> Vec<&[u32]> {
        rows.iter()
            .map(|&r| self.data.records[r].ids.as_slice())
            .collect()
    }

    /// What predictions on `rows` are scored against: the 0/1 classes (classification) or the
    /// labels.
    pub fn truth(&self, rows: &[usize], classify: bool) -> Vec<f64> {
        if classify {
            rows.iter().map(|&r| self.targets.values[r]).collect()
        } else {
            self.data.labels(rows)
        }
    }
}

impl Targets {
    /// The targets of `run` on `data`: labels standardised with the mean and sd of `train`,
    /// or classes at the run's threshold (refused when the training rows hold one class only).
    fn of(run: &FinetuneRun, data: &Dataset, train: &[usize]) -> Result<Targets> {
        let cfg = &run.train;
        let train_labels = data.labels(train);
        let (mean, sd) = crate::metrics::mean_sd(&train_labels);
        let sd = if sd > 0.0 { sd } else { 1.0 };
        let classify = cfg.task == Task::Classification;
        let threshold = cfg.binarize.map(|b| b.threshold(&train_labels));
        let all_rows: Vec<usize> = (0..data.records.len()).collect();
        let values: Vec<f64> = if classify {
            classes_of(data, &all_rows, threshold)?
        } else {
            all_rows
                .iter()
                .map(|&r| (data.records[r].label.expect("labelled table") - mean) / sd)
                .collect()
        };
        let train_positive_share =
            train.iter().map(|&r| values[r]).sum::<f64>() / train.len() as f64;
        if classify && (train_positive_share == 0.0 || train_positive_share == 1.0) {
            return Err(Error::BadFile {
                path: run.data.clone(),
                reason: format!(
                    "the training rows hold one class only{}",
                    threshold
                        .map(|t| format!(" at threshold {t}"))
                        .unwrap_or_default()
                ),
            });
        }
        Ok(Targets {
            values,
            mean,
            sd,
            threshold,
            train_positive_share,
        })
    }
}

/// Adds the rows of `extra` to training (writing `extra.json`) and says how many were used.
fn join_extra(
    data: &mut Dataset,
    split: &mut Split,
    extra: &ExtraTable,
    tokenizer: &SmilesTokenizer,
    out: &Path,
    monitor: &mut dyn Monitor,
) -> Result<ExtraReport> {
    let report = add_extra_rows(data, split, extra, tokenizer)?;
    fsutil::write_json(&out.join(files::EXTRA), &report)?;
    monitor.event(&Event::Message {
        text: format!(
            "{} extra training rows from {} ({} dropped as duplicates of validation/test molecules)",
            report.used,
            extra.path.display(),
            report.dropped.len()
        ),
    });
    Ok(report)
}

/// Reads the run's table with the model's tokenizer.
pub fn load_data(run: &FinetuneRun, tokenizer: &SmilesTokenizer) -> Result<Dataset> {
    data::read_table(&run.data, tokenizer, &run.table, true)
}

/// The tokenizer of the starting weights (MoLFormer's for new weights or a model folder without one).
fn tokenizer_of(init: &InitFrom) -> Result<SmilesTokenizer> {
    match init {
        InitFrom::Random(_) | InitFrom::Graph(_) => Ok(SmilesTokenizer::molformer()),
        InitFrom::Model(dir) => {
            let p = dir.join(crate::model::files::TOKENIZER);
            if p.is_file() {
                SmilesTokenizer::load(&p)
            } else {
                Ok(SmilesTokenizer::molformer())
            }
        }
    }
}

/// Appends the rows of `extra` to `data` and to `split.train` (never to validation or test),
/// dropping rows that duplicate a validation or test molecule of `data` (exact string,
/// stereo-stripped string or molecular-graph key, as [`crate::selection::find_duplicates`]).
pub fn add_extra_rows(
    data: &mut Dataset,
    split: &mut Split,
    extra: &ExtraTable,
    tokenizer: &SmilesTokenizer,
) -> Result<ExtraReport> {
    let table = data::read_table(&extra.path, tokenizer, &extra.table, true)?;
    let dups = crate::selection::find_duplicates(data, split, &table);
    let mut dropped = Vec::new();
    let rows = table.records.len();
    for (rec, dup) in table.records.into_iter().zip(dups) {
        match dup {
            Some(d) if d.split != "train" => dropped.push(d),
            _ => {
                split.train.push(data.records.len());
                data.records.push(rec);
            }
        }
    }
    Ok(ExtraReport {
        path: extra.path.clone(),
        rows,
        used: rows - dropped.len(),
        dropped,
    })
}
