//! `lipo bench`: inference throughput of the same model through ONNX Runtime (an exported
//! bundle) and through tch eager mode, in molecules per second at several batch sizes, over
//! the SMILES of a table (e.g. MoleculeNet Lipophilicity). Also reports the largest
//! difference between the two engines' predictions on those molecules. With
//! [`BenchConfig::int8`] an int8 export ([`crate::export::Quantize::Int8`]) is timed too
//! (engine `ort-int8`), with its own largest difference from tch. Given a gathered ensemble
//! folder (`lipo finetune --ensemble`), tch and `ort` time its first member alone and
//! `ort-ensemble` the whole ensemble as one float16 graph, as shipped.

pub mod graph;
pub mod train;

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::data::{self, TableOptions};
use crate::error::{Error, Result};
use crate::export::Quantize;
use crate::infer::{Predictor, PredictorOptions};
use crate::model::Model;
use crate::peft::LoadModel;

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
    /// CPU threads of tch, and of ONNX Runtime unless `ort_threads` is given.
    pub threads: usize,
    /// ONNX Runtime intra-op threads (default: `threads`).
    pub ort_threads: Option<usize>,
    /// Also time an int8 export through ONNX Runtime.
    pub int8: bool,
    /// Timed passes over the molecules per engine and batch size; the median is reported.
    /// Within a pass the engines take turns on slices of 256 molecules, so a slow spell of
    /// the machine hits all of them.
    pub repeats: usize,
}

/// One timing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchRow {
    /// `ort`, `ort-int8` or `tch`.
    pub engine: String,
    /// Molecules per run.
    pub batch_size: usize,
    /// Molecules predicted.
    pub molecules: usize,
    /// Median wall-clock seconds of the passes (tokenization excluded, batching and padding
    /// included).
    pub seconds: f64,
    /// Molecules per second at the median.
    pub molecules_per_s: f64,
    /// Seconds of every pass.
    pub passes: Vec<f64>,
    /// Achieved GFLOP/s: the encoders' and heads' floating-point operations (every member of
    /// an ensemble) per second at the median.
    #[serde(default)]
    pub gflops: f64,
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
    /// CPU threads given to tch.
    pub threads: usize,
    /// Intra-op threads given to ONNX Runtime.
    pub ort_threads: usize,
    /// Timed passes per engine and batch size (the median is reported).
    pub repeats: usize,
    /// Cores the machine reports.
    pub cores: usize,
    /// Every timing.
    pub rows: Vec<BenchRow>,
    /// ort / tch throughput per batch size.
    pub speedup: Vec<(usize, f64)>,
    /// Largest |ort − tch| over all molecules (label units or probability).
    pub max_abs_diff: f64,
    /// ort-int8 / tch throughput per batch size (empty without `int8`).
    pub speedup_int8: Vec<(usize, f64)>,
    /// Largest |ort-int8 − tch| over all molecules, with `int8`.
    pub max_abs_diff_int8: Option<f64>,
    /// Root mean square of ort-int8 − tch over all molecules, with `int8`.
    pub rms_diff_int8: Option<f64>,
    /// With an ensemble folder: ort-ensemble / ort (one member alone) throughput per batch
    /// size.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub speedup_ensemble: Vec<(usize, f64)>,
    /// Floating-point operations of one model on the mean molecule ([`flops`]), in MFLOP.
    #[serde(default)]
    pub mflop_per_molecule: f64,
    /// The yardstick: GFLOP/s of plain matrix products of the encoder's shapes at the mean
    /// length (tch, `threads` threads, [`gemm_gflops`]).
    #[serde(default)]
    pub gemm_gflops: f64,
}

/// Floating-point operations of one MoLFormer with a sequence head on a molecule of `t`
/// tokens: per block the fused QKV, output, and feed-forward products (2·t·h·(3h + h + 2i))
/// plus the random-feature linear attention (8·t·h·m), then the head's two dense layers.
pub fn flops(c: &crate::model::Config, t: usize) -> f64 {
    let (t, h, i, m) = (
        t as f64,
        c.hidden_size as f64,
        c.intermediate_size as f64,
        c.num_random_features as f64,
    );
    let block = 2.0 * t * h * (4.0 * h + 2.0 * i) + 8.0 * t * h * m;
    c.num_hidden_layers as f64 * block + 4.0 * h * h + 2.0 * h
}

/// GFLOP/s of the encoder's matrix products alone, `[t, h]·[h, 3h]`, `[t, h]·[h, h]`,
/// `[t, h]·[h, i]` and `[t, i]·[i, h]` (one molecule of `t` tokens at batch 1), run through
/// tch on the current thread count for about `seconds`: the limit of the machine at these
/// shapes, beside which the engines' GFLOP/s read.
pub fn gemm_gflops(c: &crate::model::Config, t: usize, seconds: f64) -> f64 {
    use tch::{Kind, Tensor};
    let (h, i, t) = (
        c.hidden_size as i64,
        c.intermediate_size as i64,
        t.max(1) as i64,
    );
    let opts = (Kind::Float, tch::Device::Cpu);
    let x = Tensor::randn([t, h], opts);
    let xi = Tensor::randn([t, i], opts);
    let shapes = [
        (&x, Tensor::randn([h, 3 * h], opts)),
        (&x, Tensor::randn([h, h], opts)),
        (&x, Tensor::randn([h, i], opts)),
        (&xi, Tensor::randn([i, h], opts)),
    ];
    let per_round: f64 = shapes
        .iter()
        .map(|(a, w)| 2.0 * (a.size()[0] * a.size()[1] * w.size()[1]) as f64)
        .sum();
    let round = || {
        for (a, w) in &shapes {
            let _ = std::hint::black_box(a.matmul(w));
        }
    };
    for _ in 0..20 {
        round();
    }
    let t0 = Instant::now();
    let mut rounds = 0usize;
    while t0.elapsed().as_secs_f64() < seconds {
        for _ in 0..50 {
            round();
        }
        rounds += 50;
    }
    per_round * rounds as f64 / t0.elapsed().as_secs_f64() / 1e9
}

/// Molecules per turn when the engines take turns (rounded to whole batches).
const INTERLEAVE_MOLECULES: usize = 256;

/// Pause before each timed turn, so the other engine's idle worker threads (ONNX Runtime and
/// OpenMP both spin a while after work) have gone to sleep and do not compete.
const SETTLE: std::time::Duration = std::time::Duration::from_millis(30);

fn time<T>(f: impl FnOnce() -> Result<T>) -> Result<(T, f64)> {
    std::thread::sleep(SETTLE);
    let t0 = Instant::now();
    let v = f()?;
    Ok((v, t0.elapsed().as_secs_f64()))
}

pub(crate) fn row(engine: &str, batch_size: usize, molecules: usize, passes: Vec<f64>) -> BenchRow {
    let mut sorted = passes.clone();
    sorted.sort_by(f64::total_cmp);
    let k = sorted.len();
    let seconds = if k % 2 == 1 {
        sorted[k / 2]
    } else {
        0.5 * (sorted[k / 2 - 1] + sorted[k / 2])
    };
    BenchRow {
        engine: engine.into(),
        batch_size,
        molecules,
        seconds,
        molecules_per_s: molecules as f64 / seconds.max(1e-12),
        passes,
        gflops: 0.0,
    }
}

/// Runs the benchmark; `bundle_dir` receives the exported bundle.
pub fn run(cfg: &BenchConfig, bundle_dir: &Path) -> Result<BenchReport> {
    if cfg.batch_sizes.is_empty() || cfg.batch_sizes.contains(&0) {
        return Err(Error::param("batch_sizes", "give positive batch sizes"));
    }
    if cfg.repeats == 0 {
        return Err(Error::param("repeats", "give at least one pass"));
    }
    let threads = cfg.threads.max(1);
    let ort_threads = cfg.ort_threads.unwrap_or(threads).max(1);
    tch::set_num_threads(threads as i32);
    let ensemble_dir =
        crate::model::ensemble_files::is_ensemble(&cfg.model).then(|| cfg.model.clone());
    let cfg = &BenchConfig {
        model: match &ensemble_dir {
            Some(dir) => crate::model::ensemble_files::member_model(dir, 0),
            None => cfg.model.clone(),
        },
        ..cfg.clone()
    };
    let model = Model::load(&cfg.model, tch::Device::Cpu)?;
    let seqs = sequences(cfg, &model)?;
    let n = seqs.len();
    let mean_tokens = seqs.iter().map(|s| s.len()).sum::<usize>() as f64 / n.max(1) as f64;
    let mut ort = open_bundles(cfg, bundle_dir, ort_threads)?;
    if let Some(dir) = &ensemble_dir {
        let bundle = bundle_dir.join("bench-ensemble.lipo");
        crate::export::export_model_dir_with(dir, &bundle, Quantize::Float16)?;
        let opts = PredictorOptions {
            threads: ort_threads,
            ..PredictorOptions::default()
        };
        ort.push(("ort-ensemble", Predictor::open(&bundle, &opts)?));
    }
    let (passes, diffs) = measure(cfg, &model, &ort, &seqs)?;
    let mflop = seqs
        .iter()
        .map(|s| flops(&model.config, s.len()))
        .sum::<f64>()
        / n.max(1) as f64
        / 1e6;
    let members = match &ensemble_dir {
        Some(dir) => (0..)
            .take_while(|&k| crate::model::ensemble_files::member_model(dir, k).is_dir())
            .count(),
        None => 1,
    };
    let gemm = gemm_gflops(&model.config, mean_tokens.round() as usize, 2.0);
    let names: Vec<&str> = std::iter::once("tch")
        .chain(ort.iter().map(|(name, _)| *name))
        .collect();
    let mut rows = Vec::new();
    for (e, per_bs) in passes.into_iter().enumerate() {
        for (b, p) in per_bs.into_iter().enumerate() {
            let mut r = row(names[e], cfg.batch_sizes[b], n, p);
            let copies = if names[e] == "ort-ensemble" {
                members
            } else {
                1
            };
            r.gflops = r.molecules_per_s * mflop * copies as f64 / 1e3;
            rows.push(r);
        }
    }
    let max_abs_diff = diffs[0].0;
    let int8 = cfg
        .int8
        .then(|| diffs[1])
        .map(|d| (d.0, (d.1 / d.2.max(1) as f64).sqrt()));
    let speedup = speedup_of(&cfg.batch_sizes, &rows, "ort", "tch");
    let speedup_int8 = if cfg.int8 {
        speedup_of(&cfg.batch_sizes, &rows, "ort-int8", "tch")
    } else {
        vec![]
    };
    let speedup_ensemble = if ensemble_dir.is_some() {
        speedup_of(&cfg.batch_sizes, &rows, "ort-ensemble", "ort")
    } else {
        vec![]
    };
    Ok(BenchReport {
        model: cfg.model.clone(),
        data: cfg.data.clone(),
        molecules: n,
        mean_tokens,
        threads,
        ort_threads,
        repeats: cfg.repeats,
        cores: std::thread::available_parallelism().map_or(1, |c| c.get()),
        rows,
        speedup,
        max_abs_diff,
        speedup_int8,
        max_abs_diff_int8: int8.map(|d| d.0),
        rms_diff_int8: int8.map(|d| d.1),
        speedup_ensemble,
        mflop_per_molecule: mflop,
        gemm_gflops: gemm,
    })
}

/// The benchmark's molecules as token ids, in length order.
fn sequences(cfg: &BenchConfig, model: &Model) -> Result<Vec<Vec<u32>>> {
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
    // Length order: each slice the engines take turns on holds similar lengths, as a
    // length-bucketed batcher would give them.
    seqs.sort_by_key(|s| s.len());
    Ok(seqs)
}

/// The model exported to bundles under `bundle_dir` and opened in ONNX Runtime: float32
/// (`ort`) and, when asked, int8 (`ort-int8`).
fn open_bundles(
    cfg: &BenchConfig,
    bundle_dir: &Path,
    ort_threads: usize,
) -> Result<Vec<(&'static str, Predictor)>> {
    let open = |quantize: Quantize| -> Result<Predictor> {
        let bundle = bundle_dir.join(format!("bench-{}.lipo", quantize.name()));
        crate::export::export_model_dir_with(&cfg.model, &bundle, quantize)?;
        Predictor::open(
            &bundle,
            &PredictorOptions {
                threads: ort_threads,
                ..PredictorOptions::default()
            },
        )
    };
    let mut ort = vec![("ort", open(Quantize::None)?)];
    if cfg.int8 {
        ort.push(("ort-int8", open(Quantize::Int8)?));
    }
    Ok(ort)
}

/// Seconds of each pass, `passes[engine][batch size]` (engine 0 is tch, then the bundles of
/// `ort`), and per bundle the largest |ort − tch|, the sum of squares and the count over the
/// first pass.
type Measured = (Vec<Vec<Vec<f64>>>, Vec<(f64, f64, usize)>);

/// Times tch and every bundle on `seqs` at each batch size, `cfg.repeats` passes.
fn measure(
    cfg: &BenchConfig,
    model: &Model,
    ort: &[(&'static str, Predictor)],
    seqs: &[Vec<u32>],
) -> Result<Measured> {
    let n = seqs.len();
    let warm = &seqs[..n.min(64)];
    // passes[engine][batch size]; engine 0 is tch, then the bundles in `ort`.
    let mut passes = vec![vec![Vec::new(); cfg.batch_sizes.len()]; 1 + ort.len()];
    // Per bundle: largest |ort − tch| and the sum of squares over the first pass.
    let mut diffs = vec![(0f64, 0f64, 0usize); ort.len()];
    for pass in 0..cfg.repeats {
        for (b, &bs) in cfg.batch_sizes.iter().enumerate() {
            if pass == 0 {
                crate::predict::predict(model, warm, bs)?;
                for (_, predictor) in ort {
                    predictor.predict_encoded_batched(warm, bs)?;
                }
            }
            // The engines take turns on slices of a few seconds' work, so a slow spell of a
            // shared machine costs every engine alike instead of whichever ran then.
            let slice = (bs * (INTERLEAVE_MOLECULES / bs).max(1)).min(n.max(1));
            let mut seconds = vec![0f64; 1 + ort.len()];
            for part in seqs.chunks(slice) {
                let (reference, s) = time(|| crate::predict::predict(model, part, bs))?;
                seconds[0] += s;
                for (e, (_, predictor)) in ort.iter().enumerate() {
                    let (p, s) = time(|| predictor.predict_encoded_batched(part, bs))?;
                    seconds[1 + e] += s;
                    if pass == 0 {
                        for (a, r) in p.iter().zip(&reference) {
                            let d = &mut diffs[e];
                            d.0 = d.0.max((a - r).abs());
                            d.1 += (a - r).powi(2);
                            d.2 += 1;
                        }
                    }
                }
            }
            for (e, s) in seconds.into_iter().enumerate() {
                passes[e][b].push(s);
            }
        }
    }
    Ok((passes, diffs))
}

/// Molecules/s of `engine` over `base`'s at each batch size.
fn speedup_of(
    batch_sizes: &[usize],
    rows: &[BenchRow],
    engine: &str,
    base: &str,
) -> Vec<(usize, f64)> {
    batch_sizes
        .iter()
        .map(|&bs| {
            let rate = |e: &str| {
                rows.iter()
                    .find(|r| r.engine == e && r.batch_size == bs)
                    .map_or(f64::NAN, |r| r.molecules_per_s)
            };
            (bs, rate(engine) / rate(base))
        })
        .collect()
}

/// The report as a plain-text table.
pub fn table(r: &BenchReport) -> String {
    let mut s = format!(
        "{} molecules (mean {:.1} tokens), tch {} threads, ONNX Runtime {} threads, {} cores; \
         median of {} passes\n",
        r.molecules, r.mean_tokens, r.threads, r.ort_threads, r.cores, r.repeats
    );
    let int8 = !r.speedup_int8.is_empty();
    s.push_str("batch  tch mol/s   ort mol/s   ort/tch");
    if int8 {
        s.push_str("   int8 mol/s  int8/tch");
    }
    if !r.speedup_ensemble.is_empty() {
        s.push_str("   ensemble mol/s  ensemble/ort");
    }
    s.push('\n');
    for (k, &(bs, speedup)) in r.speedup.iter().enumerate() {
        let rate = |e: &str| {
            r.rows
                .iter()
                .find(|x| x.engine == e && x.batch_size == bs)
                .map_or(f64::NAN, |x| x.molecules_per_s)
        };
        s.push_str(&format!(
            "{bs:>5}  {:>9.1}   {:>9.1}   {:>6.2}x",
            rate("tch"),
            rate("ort"),
            speedup
        ));
        if let Some(&(_, q)) = r.speedup_int8.get(k) {
            s.push_str(&format!("   {:>10.1}  {:>7.2}x", rate("ort-int8"), q));
        }
        if let Some(&(_, q)) = r.speedup_ensemble.get(k) {
            s.push_str(&format!("   {:>14.1}  {:>11.2}x", rate("ort-ensemble"), q));
        }
        s.push('\n');
    }
    s.push_str(&format!("max |ort - tch| = {:.2e}\n", r.max_abs_diff));
    s.push_str(&format!(
        "{:.0} MFLOP per molecule and model; achieved GFLOP/s at batch {}: {}; plain GEMM of the \
         same shapes (tch, {} threads): {:.1} GFLOP/s\n",
        r.mflop_per_molecule,
        r.speedup.first().map_or(0, |x| x.0),
        r.rows
            .iter()
            .filter(|x| Some(x.batch_size) == r.speedup.first().map(|x| x.0))
            .map(|x| format!("{} {:.1}", x.engine, x.gflops))
            .collect::<Vec<_>>()
            .join(", "),
        r.threads,
        r.gemm_gflops
    ));
    if !r.speedup_ensemble.is_empty() {
        s.push_str("tch and ort: the ensemble's first member alone; ort-ensemble: every member, one float16 graph\n");
    }
    if let (Some(m), Some(rms)) = (r.max_abs_diff_int8, r.rms_diff_int8) {
        s.push_str(&format!(
            "int8: max |ort-int8 - tch| = {m:.2e}, rms {rms:.2e} (label units)\n"
        ));
    }
    s
}
