//! What the binary reports on standard error while it works: [`CliMonitor`] (the progress bar
//! or progress lines, and Ctrl-C handling of the long commands) and the `LIPO_LOG` log lines.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use indicatif::{ProgressBar, ProgressStyle};
use lipo::progress::{Event, Monitor};

/// Progress bar plus Ctrl-C: the first Ctrl-C asks the job to stop at its next safe point.
pub(crate) struct CliMonitor {
    bar: Option<ProgressBar>,
    stop: Arc<AtomicBool>,
    /// Stage name, first step seen and when, and the last progress line (for logs, where the
    /// bar is hidden).
    stage: String,
    first: Option<(u64, std::time::Instant)>,
    last_line: Option<std::time::Instant>,
}

/// Seconds between progress lines when the bar is hidden (standard error is not a terminal).
const LOG_EVERY_S: u64 = 30;

impl CliMonitor {
    pub(crate) fn new() -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let _ = ctrlc::set_handler(move || {
            if s.swap(true, Ordering::SeqCst) {
                std::process::exit(130);
            }
            eprintln!("\ninterrupt: stopping at the next safe point (Ctrl-C again to abort)");
        });
        CliMonitor {
            bar: None,
            stop,
            stage: String::new(),
            first: None,
            last_line: None,
        }
    }
}

impl CliMonitor {
    /// Whether Ctrl-C asked the work to stop.
    pub(crate) fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// In a log (no visible bar), a progress line every [`LOG_EVERY_S`] seconds and at the end.
    fn log_line(&mut self, step: u64, total: u64, loss: f64) {
        if self.bar.as_ref().is_some_and(|b| !b.is_hidden()) {
            return;
        }
        let now = std::time::Instant::now();
        let (first, t0) = *self.first.get_or_insert((step, now));
        let due = self
            .last_line
            .is_none_or(|t| now.duration_since(t).as_secs() >= LOG_EVERY_S);
        if !(due || step == total) || step == first {
            return;
        }
        self.last_line = Some(now);
        let rate = (step - first) as f64 / now.duration_since(t0).as_secs_f64().max(1e-9);
        let eta = total.saturating_sub(step) as f64 / rate.max(1e-9);
        eprintln!(
            "{} step {step}/{total} ({:.1}%)  loss {loss:.4}  {rate:.2} steps/s  ETA {}",
            self.stage,
            100.0 * step as f64 / total.max(1) as f64,
            hms(eta)
        );
    }

    /// A line above the bar (or on stderr when there is no visible bar, e.g. in a log file).
    fn say(&self, line: &str) {
        match &self.bar {
            Some(b) if !b.is_hidden() => b.println(line),
            _ => eprintln!("{line}"),
        }
    }
}

impl Monitor for CliMonitor {
    fn event(&mut self, e: &Event) -> bool {
        match e {
            Event::Start { stage, total } => {
                let bar = ProgressBar::new(*total);
                bar.set_style(
                    ProgressStyle::with_template(
                        "{prefix} [{elapsed_precise}] {wide_bar} {pos}/{len} ({eta}) {msg}",
                    )
                    .expect("valid template"),
                );
                bar.set_prefix(stage.clone());
                self.bar = Some(bar);
                self.stage = stage.clone();
                self.first = None;
                self.last_line = None;
            }
            Event::Step { step, total, loss } => {
                if let Some(b) = &self.bar {
                    b.set_position(*step);
                    b.set_message(format!("loss {loss:.4}"));
                }
                self.log_line(*step, *total, *loss);
            }
            Event::Epoch {
                epoch,
                train_loss,
                valid_loss,
            } => self.say(&format!(
                "epoch {epoch:3}  train {train_loss:.4}  valid {valid_loss:.4}"
            )),
            Event::Message { text } => self.say(text),
        }
        !self.stop.load(Ordering::SeqCst)
    }
}

/// Seconds as h:mm:ss.
fn hms(seconds: f64) -> String {
    let s = seconds.round() as u64;
    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

impl Drop for CliMonitor {
    fn drop(&mut self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}
