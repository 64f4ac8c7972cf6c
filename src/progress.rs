//! Progress reporting and cancellation for long jobs, shared by the CLI (progress bars,
//! Ctrl-C) and the C ABI (a callback that may cancel).

use serde::Serialize;

/// Something a training job reports.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A stage starts; `total` steps are expected.
    Start {
        /// Stage name (e.g. "finetune", "mlm").
        stage: String,
        /// Total optimisation steps of the stage.
        total: u64,
    },
    /// One optimisation step finished.
    Step {
        /// Steps done so far in this stage.
        step: u64,
        /// Total steps.
        total: u64,
        /// Loss of this step.
        loss: f64,
    },
    /// An epoch (or evaluation period) finished.
    Epoch {
        /// 1-based epoch.
        epoch: usize,
        /// Mean training loss.
        train_loss: f64,
        /// Validation loss.
        valid_loss: f64,
    },
    /// A message for the user.
    Message {
        /// The text.
        text: String,
    },
}

/// Receives events; returning `false` asks the job to stop at the next safe point (after
/// writing its checkpoint).
pub trait Monitor {
    /// Handles one event.
    fn event(&mut self, event: &Event) -> bool;
}

/// A monitor that ignores everything and never cancels.
#[derive(Debug, Default, Clone, Copy)]
pub struct Silent;

impl Monitor for Silent {
    fn event(&mut self, _: &Event) -> bool {
        true
    }
}

impl<F: FnMut(&Event) -> bool> Monitor for F {
    fn event(&mut self, event: &Event) -> bool {
        self(event)
    }
}
