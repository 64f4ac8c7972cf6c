//! `lipo bench --train`: fine-tuning throughput under each thread policy, on an idle machine
//! and with one other busy thread competing for a core, as on a laptop, a shared server or a
//! CI runner (issue: libtorch's spinning OpenMP workers collapse when a core is taken).
//!
//! Each case trains the model with a regression head (Adam, MSE, batch 16, lipo's
//! length-bucketed batches) for a fixed wall time and counts molecules per second, the
//! [`crate::threads::Governor`] included where the policy is adaptive.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use tch::{Device, Reduction, Tensor};

use crate::error::Result;
use crate::model::{Model, ModelParts};
use crate::optim::{Adam, AdamConfig};
use crate::peft::LoadModel;
use crate::rng::SplitMix64;
use crate::threads::{self, Governor, Policy};
use crate::tokenizer::pad_batch;

/// One measured case.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainCase {
    /// `1 thread`, `2 threads` (fixed) or `adaptive (up to 2)`.
    pub setting: String,
    /// Whether another busy thread competed for a core.
    pub busy: bool,
    /// Training molecules per second.
    pub mols_per_s: f64,
    /// The thread count the case ended with.
    pub final_threads: usize,
}

/// All cases and the two ratios the thread policy is judged by.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainBench {
    /// Cores of the machine.
    pub cores: usize,
    /// Seconds each case trained.
    pub seconds: f64,
    /// The cases, in the order run.
    pub cases: Vec<TrainCase>,
    /// Busy machine: the default (adaptive) policy over `--threads 1` (wanted ≥ 0.8).
    pub busy_default_over_one: f64,
    /// Idle machine: the default policy over `--threads 1` (wanted ≥ 1.4 on 2 cores, where the
    /// default runs 2 threads).
    pub idle_default_over_one: f64,
}

/// Spins one thread until dropped: the "other process" on a busy machine.
struct Competitor {
    stop: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Competitor {
    fn start() -> Competitor {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let handle = std::thread::spawn(move || {
            let mut x = 0u64;
            while !flag.load(Ordering::Relaxed) {
                x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
            }
        });
        Competitor {
            stop,
            handle: Some(handle),
        }
    }
}

impl Drop for Competitor {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Trains `model` for `seconds` under `policy` on `seqs` (batches of 16 in a shuffled
/// length-bucketed order); returns molecules per second and the final thread count.
fn train_for(
    model: &Model,
    seqs: &[Vec<u32>],
    policy: Policy,
    seconds: f64,
) -> Result<(f64, usize)> {
    threads::set_policy(policy);
    let mut governor = Governor::new(false);
    let mut opt = Adam::new(model.named_tensors(), AdamConfig::adam());
    let lengths: Vec<usize> = seqs.iter().map(Vec::len).collect();
    let rows: Vec<usize> = (0..seqs.len()).collect();
    let mut rng = SplitMix64::new(7);
    let t0 = Instant::now();
    let mut mols = 0usize;
    'outer: loop {
        for batch in crate::train::bucketed_batches(&rows, &lengths, 16, &mut rng) {
            let ts = Instant::now();
            let b: Vec<&[u32]> = batch.iter().map(|&i| seqs[i].as_slice()).collect();
            let (ids, mask) = model.batch_tensors(&pad_batch(&b));
            let pred = model.head_forward(&ids, &mask, true)?.squeeze_dim(-1);
            let loss = pred.mse_loss(&Tensor::zeros_like(&pred), Reduction::Mean);
            opt.zero_grad();
            loss.backward();
            opt.step(1e-5);
            mols += b.len();
            governor.record(threads::padded_tokens(&b), ts.elapsed().as_secs_f64());
            if t0.elapsed().as_secs_f64() >= seconds {
                break 'outer;
            }
        }
    }
    Ok((mols as f64 / t0.elapsed().as_secs_f64(), governor.threads()))
}

/// Runs the cases, each for `seconds`: `--threads 1`, the default and every core fixed, on the
/// idle machine and then beside a busy thread (where every core fixed is the collapse the
/// default avoids).
pub fn run(init: &Path, seqs: &[Vec<u32>], seconds: f64) -> Result<TrainBench> {
    let model = Model::load_with_parts(
        init,
        Device::Cpu,
        Some(ModelParts {
            lm_head: false,
            num_labels: Some(1),
        }),
        0,
    )?;
    model.set_trainable(|_| true);
    let cores = threads::cores();
    let default = Policy::Adaptive { max: 0 };
    let cases = [
        (Policy::Fixed(1), false),
        (default, false),
        (Policy::Fixed(cores), false),
        (Policy::Fixed(1), true),
        (default, true),
        (Policy::Fixed(cores), true),
    ];
    // Warm-up: the first steps of a process allocate and spawn the thread pool.
    train_for(&model, seqs, Policy::Fixed(cores), seconds.min(3.0))?;
    let mut out = Vec::new();
    for (policy, busy) in cases {
        let competitor = busy.then(Competitor::start);
        let (rate, last) = train_for(&model, seqs, policy, seconds)?;
        drop(competitor);
        out.push(TrainCase {
            setting: match policy {
                Policy::Fixed(1) => "--threads 1".into(),
                Policy::Fixed(n) => format!("--threads {n}"),
                Policy::Adaptive { .. } | Policy::Unset => {
                    format!("default (adaptive, up to {cores})")
                }
            },
            busy,
            mols_per_s: rate,
            final_threads: last,
        });
    }
    threads::set_policy(Policy::Unset);
    let rate = |i: usize| out[i].mols_per_s;
    Ok(TrainBench {
        cores,
        seconds,
        busy_default_over_one: rate(4) / rate(3),
        idle_default_over_one: rate(1) / rate(0),
        cases: out,
    })
}

/// The cases as a Markdown table with the two ratios.
pub fn table(b: &TrainBench) -> String {
    let mut s = format!(
        "fine-tuning throughput, {} cores, {:.0} s per case (busy: one other thread spinning)\n\n\
         | machine | setting | molecules/s | threads at the end |\n|---|---|---|---|\n",
        b.cores, b.seconds
    );
    for c in &b.cases {
        s += &format!(
            "| {} | {} | {:.1} | {} |\n",
            if c.busy { "busy" } else { "idle" },
            c.setting,
            c.mols_per_s,
            c.final_threads
        );
    }
    s += &format!(
        "\nbusy: default / --threads 1 = {:.2} (wanted ≥ 0.8); idle: default / --threads 1 = {:.2}\n",
        b.busy_default_over_one, b.idle_default_over_one
    );
    s
}
