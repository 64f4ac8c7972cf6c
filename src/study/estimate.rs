//! The up-front estimate of a study's duration: training throughput is measured on this
//! machine (a few forward + backward steps of the pre-trained model on Lipophilicity
//! molecules), and every stage's molecule passes are counted from the configuration.

use std::time::Instant;

use serde::{Deserialize, Serialize};
use tch::{Device, Reduction, Tensor};

use super::StudyConfig;
use crate::data::{self, TableOptions};
use crate::error::Result;
use crate::model::{Model, ModelParts};
use crate::peft::LoadModel;
use crate::tokenizer::pad_batch;

/// The estimate.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Estimate {
    /// Measured training throughput (forward + backward), molecules per second.
    pub train_mols_per_s: f64,
    /// Seconds per stage.
    pub stages: Vec<(String, f64)>,
    /// Sum of the stages.
    pub total_seconds: f64,
}

impl Estimate {
    /// One line for the user.
    pub fn summary(&self) -> String {
        format!(
            "expected duration: about {} ({}), from a measured {:.0} training molecules/s on this \
             machine; other load on the machine makes it longer",
            human_seconds(self.total_seconds),
            self.stages
                .iter()
                .map(|(n, s)| format!("{n} {}", human_seconds(*s)))
                .collect::<Vec<_>>()
                .join(", "),
            self.train_mols_per_s
        )
    }
}

/// `42 s`, `12 min`, `3.4 h`.
pub fn human_seconds(s: f64) -> String {
    if s < 90.0 {
        format!("{s:.0} s")
    } else if s < 5400.0 {
        format!("{:.0} min", s / 60.0)
    } else {
        format!("{:.1} h", s / 3600.0)
    }
}

/// Training molecules per second of `cfg.pretrained` with a regression head on `device`:
/// one warm-up and three timed steps of 16 molecules at each thread count the thread policy
/// allows ([`crate::threads`]), the fastest of them.
fn calibrate(cfg: &StudyConfig, device: Device, smiles: &[Vec<u32>]) -> Result<f64> {
    let model = Model::load_with_parts(
        &cfg.pretrained,
        device,
        Some(ModelParts {
            lm_head: false,
            num_labels: Some(1),
        }),
        0,
    )?;
    model.set_trainable(|_| true);
    let batch = 16.min(smiles.len().max(1));
    let step = |i: usize| -> Result<()> {
        let rows: Vec<&[u32]> = (0..batch)
            .map(|k| smiles[(i * batch + k) % smiles.len()].as_slice())
            .collect();
        let (ids, mask) = model.batch_tensors(&pad_batch(&rows));
        let pred = model.head_forward(&ids, &mask, true)?.squeeze_dim(-1);
        let target = Tensor::zeros_like(&pred);
        pred.mse_loss(&target, Reduction::Mean).backward();
        Ok(())
    };
    // Under the thread policy the runs will use: each count an adaptive run may settle on is
    // timed, and the fastest is the one training will find.
    let policy = crate::threads::policy();
    let counts = if device.is_cuda() {
        vec![tch::get_num_threads().max(1) as usize]
    } else {
        policy.candidates()
    };
    let mut best = 0.0f64;
    for &threads in &counts {
        tch::set_num_threads(threads as i32);
        step(0)?;
        let t0 = Instant::now();
        for i in 1..=3 {
            step(i)?;
        }
        best = best.max((3 * batch) as f64 / t0.elapsed().as_secs_f64().max(1e-9));
    }
    tch::set_num_threads(counts[0] as i32);
    Ok(best)
}

/// Estimates every stage of `cfg` from a throughput measured on `device`.
pub fn estimate(cfg: &StudyConfig, device: Device) -> Result<Estimate> {
    let tok = crate::tokenizer::SmilesTokenizer::molformer();
    let opts = TableOptions::default();
    let table = data::read_table(&cfg.data, &tok, &opts, true)?;
    let ext = data::read_table(&cfg.external, &tok, &opts, true)?
        .records
        .len() as f64;
    let sample: Vec<Vec<u32>> = table
        .records
        .iter()
        .take(256)
        .map(|r| r.ids.clone())
        .collect();
    let rate = calibrate(cfg, device, &sample)?;
    let n = table.records.len() as f64;
    let ft = &cfg.finetune;
    let split = |rows: f64| {
        let train = rows * (1.0 - ft.test_frac);
        (
            train * (1.0 - ft.valid_frac),
            train * ft.valid_frac,
            rows * ft.test_frac,
        )
    };
    // One run: epochs × (training passes + validation forward passes ≈ a third of a step)
    // plus the test forward pass.
    let run = |epochs: usize, train: f64, valid: f64, test: f64| {
        (epochs as f64 * (train + valid / 3.0) + test / 3.0) / rate
    };
    let (tr, va, te) = split(n);
    let seeds = cfg.seeds.len() as f64;
    let t3 = cfg.table3_regression();
    let peft_epochs: usize = t3.methods().iter().skip(1).map(|m| m.epochs).sum();
    let full_epochs = ft.epochs;
    let t1 =
        seeds * (3.0 * run(full_epochs, tr, va, te) + cfg.domain_mlm.epochs as f64 * tr / rate);
    let lissa = &cfg.score.lissa;
    let hvp_rows =
        (lissa.depth * lissa.repeats.max(1) + 20) as f64 * lissa.batch_size.max(1) as f64;
    let influence = (3.0 * hvp_rows + 2.0 * (va + ext) + tr / 3.0) / rate;
    // TracIn: a run that keeps its epochs, one gradient pass per epoch model, a run with the
    // top fraction.
    let tracin = if cfg.table2().tracin {
        run(full_epochs, tr, va, te)
            + full_epochs as f64 * (va + ext) / rate
            + run(full_epochs, tr + cfg.fraction * ext, va, te)
    } else {
        0.0
    };
    let t2 = seeds
        * (run(full_epochs, tr + ext, va, te)
            + 3.0 * run(full_epochs, tr + cfg.fraction * ext, va, te)
            + influence
            + tracin);
    let t3r = seeds * run(peft_epochs, tr, va, te);
    let (etr, eva, ete) = split(ext);
    let t3c = seeds * run(full_epochs + peft_epochs, etr, eva, ete);
    let best = te / rate + 5.0;
    // The search: every PEFT method at every rate (patience may stop runs sooner).
    let rates = cfg.peft_lr_search.len() as f64;
    let searches = [rates * t3r, rates * seeds * run(peft_epochs, etr, eva, ete)];
    let names = super::files::STAGES;
    let mut stages: Vec<(String, f64)> = names
        .iter()
        .zip([t1, t2, t3r, t3c, best])
        .map(|(n, s)| (n.to_string(), s))
        .collect();
    if rates > 0.0 {
        for (n, s) in super::files::SEARCH_STAGES.iter().zip(searches) {
            stages.push((n.to_string(), s));
        }
    }
    Ok(Estimate {
        train_mols_per_s: rate,
        total_seconds: stages.iter().map(|(_, s)| s).sum(),
        stages,
    })
}
