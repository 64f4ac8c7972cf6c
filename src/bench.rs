//! `lipo bench`: inference throughput of the same model through ONNX Runtime (an exported
//! bundle) and through tch eager mode, in molecules per second at several batch sizes, over
//! the SMILES of a table (e.g. MoleculeNet Lipophilicity). Also reports the largest
//! difference between the two engines' predictions on those molecules.

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::data::{self, TableOptions};
use crate::error::{Error, Result};
use crate::infer::{Predictor, PredictorOptions};
use crate::model::Model;

/// What to measure.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchConfig {
    /// Model folder (exported to a temporary bundle for ONNX Runtime).
    pub model: PathBuf,
    /// Table or list of SMILES.
    pub data: PathBuf,
    /// SMILES column of the table (default: the first containing "smiles").
    pub smiles_col: Option<String>,
    /// Batch sizes to time.
    pub batch_sizes: Vec<usize>,
    /// Use only the first N molecules.
    pub limit: Option<usize>,
    /// CPU threads for both engines (ONNX Runtime intra-op threads, tch threads).
    pub threads: usize,
}

/// One timing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchRow {
    /// `ort` or `tch`.
    pub engine: String,
    /// Molecules per run.
    pub batch_size: usize,
    /// Molecules predicted.
    pub molecules: usize,
    /// Wall-clock seconds (tokenization excluded, batching and padding included).
    pub seconds: f64,
    /// Molecules per second.
    pub molecules_per_s: f64,
}

/// The benchmark's results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchReport {
    /// The model folder.
    pub model: PathBuf,
    /// The SMILES source.
    pub data: PathBuf,
    /// Molecules per timing.
    pub molecules: usize,
    /// Mean tokens per molecule (with `<bos>`/`<eos>`).
    pub mean_tokens: f64,
    /// CPU threads given to each engine.
    pub threads: usize,
    /// Cores the machine reports.
    pub cores: usize,
    /// Every timing.
    pub rows: Vec<BenchRow>,
    /// ort / tch throughput per batch size.
    pub speedup: Vec<(usize, f64)>,
    /// Largest |ort − tch| over all molecules (label units or probability).
    pub max_abs_diff: f64,
}

fn time<T>(f: impl FnOnce() -> Result<T>) -> Result<(T, f64)> {
    let t0 = Instant::now();
    let v = f()?;
    Ok((v, t0.elapsed().as_secs_f64()))
}

fn row(engine: &str, batch_size: usize, molecules: usize, seconds: f64) -> BenchRow {
    BenchRow {
        engine: engine.into(),
        batch_size,
        molecules,
        seconds,
        molecules_per_s: molecules as f64 / seconds.max(1e-12),
    }
}

/// Runs the benchmark; `bundle_dir` receives the exported bundle.
pub fn run(cfg: &BenchConfig, bundle_dir: &Path) -> Result<BenchReport> {
    if cfg.batch_sizes.is_empty() || cfg.batch_sizes.contains(&0) {
        return Err(Error::param("--batch-sizes", "give positive batch sizes"));
    }
    let threads = cfg.threads.max(1);
    tch::set_num_threads(threads as i32);
    let model = Model::load(&cfg.model, tch::Device::Cpu)?;
    let opts = TableOptions {
        smiles_col: cfg.smiles_col.clone(),
        label_col: None,
        skip_bad_rows: true,
    };
    let table = data::read_smiles(&cfg.data, &model.tokenizer, &opts)?;
    let mut seqs: Vec<Vec<u32>> = table.records.into_iter().map(|r| r.ids).collect();
    if let Some(n) = cfg.limit {
        seqs.truncate(n.max(1));
    }
    let n = seqs.len();
    let mean_tokens = seqs.iter().map(|s| s.len()).sum::<usize>() as f64 / n.max(1) as f64;
    let bundle = bundle_dir.join("bench.lipo");
    crate::export::export_model_dir(&cfg.model, &bundle)?;
    let predictor = Predictor::open(
        &bundle,
        &PredictorOptions {
            threads,
            ..PredictorOptions::default()
        },
    )?;
    let warm = &seqs[..n.min(64)];
    let mut rows = Vec::new();
    let mut tch_ref = Vec::new();
    for &bs in &cfg.batch_sizes {
        crate::predict::predict(&model, warm, bs)?;
        let (p, s) = time(|| crate::predict::predict(&model, &seqs, bs))?;
        rows.push(row("tch", bs, n, s));
        tch_ref = p;
    }
    let mut max_abs_diff = 0f64;
    for &bs in &cfg.batch_sizes {
        predictor.predict_encoded_batched(warm, bs)?;
        let (p, s) = time(|| predictor.predict_encoded_batched(&seqs, bs))?;
        rows.push(row("ort", bs, n, s));
        for (a, b) in p.iter().zip(&tch_ref) {
            max_abs_diff = max_abs_diff.max((a - b).abs());
        }
    }
    let speedup = cfg
        .batch_sizes
        .iter()
        .map(|&bs| {
            let rate = |e: &str| {
                rows.iter()
                    .find(|r| r.engine == e && r.batch_size == bs)
                    .map_or(f64::NAN, |r| r.molecules_per_s)
            };
            (bs, rate("ort") / rate("tch"))
        })
        .collect();
    Ok(BenchReport {
        model: cfg.model.clone(),
        data: cfg.data.clone(),
        molecules: n,
        mean_tokens,
        threads,
        cores: std::thread::available_parallelism().map_or(1, |c| c.get()),
        rows,
        speedup,
        max_abs_diff,
    })
}

/// The report as a plain-text table.
pub fn table(r: &BenchReport) -> String {
    let mut s = format!(
        "{} molecules (mean {:.1} tokens), {} threads on {} cores\n",
        r.molecules, r.mean_tokens, r.threads, r.cores
    );
    s.push_str("batch  tch mol/s   ort mol/s   ort/tch\n");
    for &(bs, speedup) in &r.speedup {
        let rate = |e: &str| {
            r.rows
                .iter()
                .find(|x| x.engine == e && x.batch_size == bs)
                .map_or(f64::NAN, |x| x.molecules_per_s)
        };
        s.push_str(&format!(
            "{bs:>5}  {:>9.1}   {:>9.1}   {:>6.2}x\n",
            rate("tch"),
            rate("ort"),
            speedup
        ));
    }
    s.push_str(&format!("max |ort - tch| = {:.2e}\n", r.max_abs_diff));
    s
}
