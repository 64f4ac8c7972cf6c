//! Fine-tuning of a sequence head plus encoder (the study's Task 1.1) or of adapters only
//! (Task 3, [`crate::peft`]): Adam, MSE on standardised labels (regression) or BCE on labels
//! binarised at a threshold (classification), batches of similar-length molecules, per-epoch
//! validation whose loss chooses the kept epoch, test metrics, a per-step JSONL log, and
//! resumable per-epoch checkpoints.
//!
//! One job per file: `config` (the settings and their validation), `inputs` (table, split,
//! extra rows, targets), `batches` (what each epoch trains on, in which order), `finetune`
//! (the run as named steps), `epochs` (the epoch loop), `evaluate` (metrics and predictions),
//! `report` (what a run measured, and the final step), `run_dir` (reading finished run
//! folders back) and `ensemble` (K-fold ensembles of such runs).

mod batches;
mod config;
pub mod ensemble;
mod epochs;
mod evaluate;
mod finetune;
mod graph;
mod inputs;
mod report;
mod run_dir;

pub use batches::bucketed_batches;
pub use config::{Binarize, ExtraTable, FinetuneConfig, FinetuneRun, Fold, InitFrom, LrSchedule};
pub use ensemble::{finetune_ensemble, EnsembleReport, EnsembleRun, SdMethod};
pub use epochs::EpochRecord;
pub use evaluate::{evaluate, evaluate_classification, write_predictions};
pub use finetune::finetune;
pub use inputs::{add_extra_rows, load_data};
pub use report::{plot_history, ClassificationReport, ExtraReport, FinetuneReport, MemoryReport};
pub use run_dir::{epoch_checkpoints, finished_record, kept_or_retrained_model, test_rows_of};

/// Files in a fine-tuning run folder.
pub mod files {
    /// The resolved run.
    pub const RUN: &str = "run.json";
    /// The split as row indices.
    pub const SPLIT: &str = "split.json";
    /// The report.
    pub const METRICS: &str = "metrics.json";
    /// Best-epoch model folder.
    pub const MODEL: &str = "model";
    /// Inside a run folder whose weights were not kept: the run trained again.
    pub const RETRAINED: &str = "retrained";
    /// Last-epoch checkpoint folder.
    pub const CHECKPOINT: &str = "checkpoint";
    /// Loss curves.
    pub const LOSS_PNG: &str = "loss.png";
    /// Per-step and per-evaluation log (JSON lines).
    pub const LOG: &str = "log.jsonl";
    /// Adapters on their own (PEFT runs), applicable to the `--init` model.
    pub const ADAPTER: &str = "adapter";
    /// Test-set predictions.
    pub const TEST_PREDICTIONS: &str = "test_predictions.csv";
    /// What happened to the extra training rows (runs with an extra table).
    pub const EXTRA: &str = "extra.json";
    /// With `keep_epochs`: the model after each epoch, `epochs/epoch-<k>/` (TracIn's
    /// checkpoints).
    pub const EPOCHS: &str = "epochs";
}
