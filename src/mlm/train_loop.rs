//! The training steps: epochs of shuffled chunks cut into batches of similar length, one
//! AdamW step per batch, evaluations and checkpoints on their schedules, and the state a
//! checkpoint keeps so that a resumed run takes the very batch the interrupted one would have.

use std::path::Path;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use tch::Device;

use super::corpus::{ChunkIter, Corpus};
use super::objective::{evaluate, mlm_step};
use super::{MlmConfig, MlmEval, MlmRun};
use crate::error::{Error, Result};
use crate::model::Model;
use crate::optim::{schedule, Adam};
use crate::progress::{Event, Monitor};
use crate::rng::SplitMix64;

/// Where a run stands: written with every checkpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct MlmState {
    pub(super) run: MlmRun,
    pub(super) step: u64,
    pub(super) epoch: usize,
    pub(super) chunk: usize,
    pub(super) batch_in_chunk: usize,
    pub(super) molecules: u64,
    pub(super) train_seconds: f64,
    pub(super) history: Vec<MlmEval>,
    /// Training loss sum, steps and molecules since the last evaluation.
    pub(super) window: (f64, u64, u64),
}

/// The state at the start of the run: the checkpoint's (its weights and optimiser state put
/// into `model` and `opt`) when there is a usable one, else a fresh one.
pub(super) fn restore(
    run: &MlmRun,
    ckpt: &Path,
    model: &Model,
    opt: &mut Adam,
    device: Device,
    monitor: &mut dyn Monitor,
) -> Result<MlmState> {
    let mut say = |text: String| {
        monitor.event(&Event::Message { text });
    };
    let restored: Option<MlmState> =
        crate::checkpoint::restore(ckpt, model, opt, device, &mut say)?;
    let Some(st) = restored else {
        return Ok(MlmState {
            run: run.clone(),
            step: 0,
            epoch: 1,
            chunk: 0,
            batch_in_chunk: 0,
            molecules: 0,
            train_seconds: 0.0,
            history: vec![],
            window: (0.0, 0, 0),
        });
    };
    monitor.event(&Event::Message {
        text: format!(
            "resuming at step {} (epoch {}, chunk {})",
            st.step, st.epoch, st.chunk
        ),
    });
    Ok(st)
}

/// Whether training goes on after a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Continue,
    /// The last step is done.
    Done,
}

/// Everything the training steps use.
pub(super) struct Trainer<'a> {
    pub(super) model: &'a Model,
    pub(super) opt: &'a mut Adam,
    pub(super) cfg: &'a MlmConfig,
    pub(super) corpus: &'a Corpus<'a>,
    pub(super) valid: &'a [Vec<u32>],
    pub(super) total_steps: u64,
    pub(super) ckpt: &'a Path,
    pub(super) monitor: &'a mut dyn Monitor,
    /// Chooses the CPU thread count from the steps' throughput.
    pub(super) governor: crate::threads::Governor,
}

/// One chunk of training molecules, shuffled, and its batches (rows of `seqs`).
struct Chunk {
    seqs: Vec<Vec<u32>>,
    batches: Vec<Vec<usize>>,
}

/// The clocks of the throughput window and of this session's training time.
struct Clocks {
    window: Instant,
    session: Instant,
}

impl Trainer<'_> {
    /// Trains from `st` to the last step and returns the final state (its training time
    /// included). A cancelled run has written its checkpoint and is an [`Error::Cancelled`].
    pub(super) fn run(mut self, mut st: MlmState) -> Result<MlmState> {
        self.monitor.event(&Event::Start {
            stage: "mlm".into(),
            total: self.total_steps,
        });
        let mut clocks = Clocks {
            window: Instant::now(),
            session: Instant::now(),
        };
        while st.epoch <= self.cfg.epochs && st.step < self.total_steps {
            if self.epoch(&mut st, &mut clocks)? == Flow::Done {
                break;
            }
            st.epoch += 1;
            st.chunk = 0;
        }
        st.train_seconds += clocks.session.elapsed().as_secs_f64();
        Ok(st)
    }

    /// The rest of epoch `st.epoch`, from chunk `st.chunk` and its batch `st.batch_in_chunk`.
    fn epoch(&mut self, st: &mut MlmState, clocks: &mut Clocks) -> Result<Flow> {
        let corpus = self.corpus;
        let mut chunks = corpus.chunks(self.cfg.chunk_size)?;
        for _ in 0..st.chunk {
            chunks.next_chunk(true, None)?;
        }
        while let Some(Chunk { seqs, batches }) = self.next_chunk(&mut chunks, st)? {
            for rows in batches.iter().skip(st.batch_in_chunk) {
                let batch: Vec<&[u32]> = rows.iter().map(|&r| seqs[r].as_slice()).collect();
                if self.step(st, &batch, clocks)? == Flow::Done {
                    return Ok(Flow::Done);
                }
            }
            st.chunk += 1;
            st.batch_in_chunk = 0;
        }
        Ok(Flow::Continue)
    }

    /// Chunk `st.chunk` of epoch `st.epoch` (augmented when asked), shuffled and cut into
    /// batches; `None` after the last chunk.
    fn next_chunk(&self, chunks: &mut ChunkIter<'_>, st: &MlmState) -> Result<Option<Chunk>> {
        let cfg = self.cfg;
        let augment = (cfg.augment > 0.0).then(|| {
            let key = format!("mlm-augment-e{}-c{}", st.epoch, st.chunk);
            (cfg.augment, SplitMix64::derive(cfg.seed, &key))
        });
        let Some(mut seqs) = chunks.next_chunk(false, augment)? else {
            return Ok(None);
        };
        let mut rng = SplitMix64::derive(cfg.seed, &format!("mlm-e{}-c{}", st.epoch, st.chunk));
        rng.shuffle(&mut seqs);
        let lengths: Vec<usize> = seqs.iter().map(|s| s.len()).collect();
        let rows: Vec<usize> = (0..seqs.len()).collect();
        let batches = crate::train::bucketed_batches(&rows, &lengths, cfg.batch_size, &mut rng);
        Ok(Some(Chunk { seqs, batches }))
    }

    /// One training step on `batch`, then the evaluation and checkpoint when due.
    fn step(&mut self, st: &mut MlmState, batch: &[&[u32]], clocks: &mut Clocks) -> Result<Flow> {
        let t = Instant::now();
        let (loss, lr) = self.optimise(st.step, batch)?;
        let work = crate::threads::padded_tokens(batch);
        self.governor.record(work, t.elapsed().as_secs_f64());
        st.step += 1;
        st.batch_in_chunk += 1;
        st.molecules += batch.len() as u64;
        st.window.0 += loss;
        st.window.1 += 1;
        st.window.2 += batch.len() as u64;
        let go_on = self.monitor.event(&Event::Step {
            step: st.step,
            total: self.total_steps,
            loss,
        });
        let last = st.step == self.total_steps;
        if st.step % self.cfg.eval_every == 0 || last {
            self.record_evaluation(st, lr, clocks)?;
        }
        if !go_on || st.step % self.cfg.checkpoint_every == 0 || last {
            st.train_seconds += clocks.session.elapsed().as_secs_f64();
            clocks.session = Instant::now();
            crate::checkpoint::write(self.model, self.opt, st, self.ckpt)?;
        }
        if !go_on {
            return Err(Error::Cancelled(format!(
                "MLM stopped at step {}; checkpoint in {} — run the same command to resume",
                st.step,
                self.ckpt.display()
            )));
        }
        Ok(if st.step >= self.total_steps {
            Flow::Done
        } else {
            Flow::Continue
        })
    }

    /// The AdamW update of step `step` on `batch`: its training loss and learning rate.
    fn optimise(&mut self, step: u64, batch: &[&[u32]]) -> Result<(f64, f64)> {
        let cfg = self.cfg;
        tch::manual_seed((cfg.seed ^ step.wrapping_mul(0x9e37_79b9)) as i64);
        let mut mrng = SplitMix64::derive(cfg.seed, &format!("mlm-mask-{step}"));
        let (loss, _, _) = mlm_step(self.model, batch, cfg.mask_prob, &mut mrng, true)?;
        self.opt.zero_grad();
        loss.backward();
        self.opt.clip_grad_norm(cfg.grad_clip);
        let lr = schedule(cfg.lr, step, self.total_steps, cfg.warmup_steps, true);
        self.opt.step(lr);
        let l = loss.double_value(&[]);
        if !l.is_finite() {
            return Err(Error::Training(format!(
                "MLM loss became {l} at step {step}; try a lower lr"
            )));
        }
        Ok((l, lr))
    }

    /// Evaluates the held-out molecules, reports and records the result, and starts a new
    /// throughput window.
    fn record_evaluation(&mut self, st: &mut MlmState, lr: f64, clocks: &mut Clocks) -> Result<()> {
        let (vl, va) = evaluate(self.model, self.valid, self.cfg)?;
        let secs = clocks.window.elapsed().as_secs_f64();
        let e = MlmEval {
            step: st.step,
            epoch: st.epoch,
            train_loss: st.window.0 / st.window.1.max(1) as f64,
            valid_loss: vl,
            valid_accuracy: va,
            valid_perplexity: vl.exp(),
            mols_per_s: st.window.2 as f64 / secs.max(1e-9),
            lr,
        };
        self.monitor.event(&Event::Message {
            text: format!(
                "step {:6}  train {:.4}  valid {:.4}  masked accuracy {:.4}  {:.0} mol/s",
                e.step, e.train_loss, e.valid_loss, e.valid_accuracy, e.mols_per_s
            ),
        });
        st.history.push(e);
        st.window = (0.0, 0, 0);
        clocks.window = Instant::now();
        Ok(())
    }
}
