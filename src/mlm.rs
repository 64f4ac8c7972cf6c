//! Masked-language-model training (the study's Task 1.2 and lipo's own pre-training): BERT
//! masking of 15 % of the non-special tokens (80 % `<mask>`, 10 % random, 10 % unchanged),
//! cross-entropy on the chosen positions only, AdamW with warm-up and linear decay.
//!
//! The corpus is streamed (CSV/TSV/.smi, optionally .gz) in chunks that are shuffled and cut
//! into batches of similar length, so a million molecules never sit in memory. The order of
//! batches is a function of (seed, epoch, chunk), which makes checkpoints exact: a resumed run
//! continues with the very batch the interrupted one would have taken next.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use crate::data::{self, TableOptions};
use crate::error::{Error, Result};
use crate::fsutil;
use crate::model::{Config, Model, ModelMeta, ModelParts, Task};
use crate::optim::{schedule, Adam, AdamConfig};
use crate::peft::LoadModel;
use crate::progress::{Event, Monitor};
use crate::rng::SplitMix64;
use crate::tokenizer::{pad_batch, SmilesTokenizer, MASK_ID, NUM_LEADING_SPECIAL};
use crate::train::InitFrom;

/// Optimisation settings of an MLM run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MlmConfig {
    /// Passes over the corpus.
    pub epochs: usize,
    /// Stop after this many steps (also fixes the schedule's length).
    pub max_steps: Option<u64>,
    /// Molecules per step.
    pub batch_size: usize,
    /// Peak AdamW learning rate.
    pub lr: f64,
    /// AdamW weight decay.
    pub weight_decay: f64,
    /// Linear warm-up steps.
    pub warmup_steps: u64,
    /// Share of non-special tokens chosen for prediction (0.15).
    pub mask_prob: f64,
    /// Seed of masking, batch order, dropout and new weights.
    pub seed: u64,
    /// Molecules held out for masked accuracy (chosen by a hash of the SMILES).
    pub valid_size: usize,
    /// Evaluate every this many steps (and at every epoch end).
    pub eval_every: u64,
    /// Write a checkpoint every this many steps.
    pub checkpoint_every: u64,
    /// Molecules read, shuffled and bucketed together.
    pub chunk_size: usize,
    /// Skip molecules with more tokens than this.
    pub max_tokens: usize,
    /// Clip the global gradient norm.
    pub grad_clip: Option<f64>,
    /// Draw fresh random attention features at every training step, as the reference
    /// MoLFormer code does (absent: false, the stored features throughout).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub redraw_features: bool,
    /// SMILES augmentation: the share (0–1) of training molecules written as a fresh random
    /// SMILES of the same molecule at each pass ([`crate::augment`]); held-out molecules are
    /// always read as given (absent: 0).
    #[serde(skip_serializing_if = "crate::fsutil::is_default")]
    pub augment: f64,
}

impl Default for MlmConfig {
    fn default() -> Self {
        MlmConfig {
            epochs: 1,
            max_steps: None,
            batch_size: 64,
            lr: 5e-4,
            weight_decay: 0.01,
            warmup_steps: 500,
            mask_prob: 0.15,
            seed: 0,
            valid_size: 2000,
            eval_every: 1000,
            checkpoint_every: 500,
            chunk_size: 16384,
            max_tokens: 256,
            grad_clip: Some(1.0),
            redraw_features: false,
            augment: 0.0,
        }
    }
}

/// A fully resolved MLM run (`run.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MlmRun {
    /// The SMILES corpus.
    pub corpus: PathBuf,
    /// How to read it.
    #[serde(default)]
    pub table: TableOptions,
    /// Tables whose molecules must not be trained on (exact SMILES match).
    #[serde(default)]
    pub exclude: Vec<PathBuf>,
    /// Starting weights.
    pub init: InitFrom,
    /// Optimisation.
    pub mlm: MlmConfig,
}

/// One evaluation of the held-out molecules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MlmEval {
    /// Steps done.
    pub step: u64,
    /// Epoch (1-based) during which it ran.
    pub epoch: usize,
    /// Mean training loss since the previous evaluation.
    pub train_loss: f64,
    /// Held-out cross-entropy on masked positions.
    pub valid_loss: f64,
    /// Held-out masked-token accuracy.
    pub valid_accuracy: f64,
    /// `exp(valid_loss)`.
    pub valid_perplexity: f64,
    /// Training molecules per second since the previous evaluation.
    pub mols_per_s: f64,
    /// Learning rate at this step.
    pub lr: f64,
}

/// What an MLM run measured (`metrics.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MlmReport {
    /// Steps taken.
    pub steps: u64,
    /// Training molecules seen.
    pub molecules: u64,
    /// Corpus molecules usable for training per epoch.
    pub corpus_train: u64,
    /// Held-out molecules.
    pub corpus_valid: usize,
    /// Corpus rows removed because they are in an excluded table.
    pub excluded: u64,
    /// Corpus rows skipped (unreadable SMILES, too long).
    pub skipped: u64,
    /// Evaluation history.
    pub history: Vec<MlmEval>,
    /// Final held-out masked-token accuracy.
    pub valid_accuracy: f64,
    /// Final held-out perplexity.
    pub valid_perplexity: f64,
    /// Mean training molecules per second.
    pub mols_per_s: f64,
    /// Seconds spent training (over all sessions of a resumed run).
    pub train_seconds: f64,
    /// Device and threads.
    pub device: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct MlmState {
    run: MlmRun,
    step: u64,
    epoch: usize,
    chunk: usize,
    batch_in_chunk: usize,
    molecules: u64,
    train_seconds: f64,
    history: Vec<MlmEval>,
    /// Training loss sum, steps and molecules since the last evaluation.
    window: (f64, u64, u64),
}

/// Files of an MLM run folder.
pub mod files {
    /// Final model (encoder + MLM head).
    pub const MODEL: &str = "model";
    /// Resumable state.
    pub const CHECKPOINT: &str = "checkpoint";
    /// Report.
    pub const METRICS: &str = "metrics.json";
    /// Loss and accuracy curves.
    pub const CURVES_PNG: &str = "mlm.png";
}

fn fnv(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Streams the SMILES of a corpus file: (1-based line, SMILES), through the one reader of
/// molecule files. Rows without a SMILES are left out; a row the reader cannot use comes back
/// with an empty SMILES, which fails to encode and is counted as skipped.
struct SmilesStream(crate::smiles_stream::SmilesStream);

impl SmilesStream {
    fn open(path: &Path, table: &TableOptions) -> Result<Self> {
        crate::smiles_stream::SmilesStream::open(path, table.smiles_col.as_deref()).map(Self)
    }

    fn next_smiles(&mut self) -> Option<Result<(usize, String)>> {
        loop {
            let row = match self.0.next()? {
                Ok(row) => row,
                Err(e) => return Some(Err(e)),
            };
            if row.problem.is_some() {
                return Some(Ok((row.line, String::new())));
            }
            if !row.smiles.is_empty() {
                return Some(Ok((row.line, row.smiles)));
            }
        }
    }
}

/// Number of SMILES entries of a corpus file.
fn count_entries(path: &Path, table: &TableOptions) -> Result<u64> {
    let mut s = SmilesStream::open(path, table)?;
    let mut n = 0;
    while let Some(item) = s.next_smiles() {
        item?;
        n += 1;
    }
    Ok(n)
}

/// The corpus with its filters: held-out molecules (hash), excluded molecules, length.
struct Corpus<'a> {
    path: PathBuf,
    table: TableOptions,
    tokenizer: &'a SmilesTokenizer,
    exclude: HashSet<String>,
    valid_mod: u64,
    max_tokens: usize,
}

#[derive(Default)]
struct CorpusScan {
    train: u64,
    valid: Vec<Vec<u32>>,
    excluded: u64,
    skipped: u64,
}

impl Corpus<'_> {
    fn is_valid(&self, smiles: &str) -> bool {
        fnv(smiles) % self.valid_mod == 0
    }

    /// One pass: counts, held-out molecules.
    fn scan(&self, valid_cap: usize) -> Result<CorpusScan> {
        let mut s = SmilesStream::open(&self.path, &self.table)?;
        let mut scan = CorpusScan::default();
        while let Some(item) = s.next_smiles() {
            let (_, smi) = item?;
            if self.exclude.contains(&smi) {
                scan.excluded += 1;
                continue;
            }
            match self.tokenizer.encode(&smi) {
                Ok(ids) if ids.len() <= self.max_tokens => {
                    if self.is_valid(&smi) {
                        if scan.valid.len() < valid_cap {
                            scan.valid.push(ids);
                        }
                    } else {
                        scan.train += 1;
                    }
                }
                _ => scan.skipped += 1,
            }
        }
        Ok(scan)
    }

    /// Iterates the training molecules in chunks of `chunk_size`.
    fn chunks(&self, chunk_size: usize) -> Result<ChunkIter<'_>> {
        Ok(ChunkIter {
            corpus: self,
            stream: SmilesStream::open(&self.path, &self.table)?,
            chunk_size,
        })
    }
}

struct ChunkIter<'a> {
    corpus: &'a Corpus<'a>,
    stream: SmilesStream,
    chunk_size: usize,
}

impl ChunkIter<'_> {
    /// Next chunk of token sequences (`None` at the end); with `skip`, molecules are only
    /// counted, not tokenized. With `augment` = (share, stream), that share of the molecules
    /// is written as a random SMILES drawn from the stream; one that cannot be rewritten, or
    /// whose rewrite is longer than `max_tokens`, stays as given, so chunks hold the same
    /// molecules with or without augmentation.
    fn next_chunk(
        &mut self,
        skip: bool,
        mut augment: Option<(f64, SplitMix64)>,
    ) -> Result<Option<Vec<Vec<u32>>>> {
        let c = self.corpus;
        let mut out = Vec::with_capacity(self.chunk_size);
        let mut n = 0;
        while n < self.chunk_size {
            let Some(item) = self.stream.next_smiles() else {
                break;
            };
            let (_, smi) = item?;
            if c.exclude.contains(&smi) || c.is_valid(&smi) {
                continue;
            }
            match c.tokenizer.encode(&smi) {
                Ok(ids) if ids.len() <= c.max_tokens => {
                    n += 1;
                    if skip {
                        continue;
                    }
                    let rewritten = match &mut augment {
                        Some((share, rng)) => (rng.next_f64() < *share)
                            .then(|| crate::augment::randomize(&smi, rng))
                            .flatten()
                            .and_then(|r| c.tokenizer.encode(&r).ok())
                            .filter(|r| r.len() <= c.max_tokens),
                        None => None,
                    };
                    out.push(rewritten.unwrap_or(ids));
                }
                _ => {}
            }
        }
        Ok(if n == 0 { None } else { Some(out) })
    }
}

/// Chooses masked positions BERT-style. Returns the corrupted ids, the flat indices of the
/// chosen positions and their original ids. At least one position is chosen per batch.
pub fn mask_tokens(
    ids: &[i64],
    mask: &[i64],
    vocab: usize,
    prob: f64,
    rng: &mut SplitMix64,
) -> (Vec<i64>, Vec<i64>, Vec<i64>) {
    let mut corrupted = ids.to_vec();
    let mut positions = Vec::new();
    let mut targets = Vec::new();
    let special = |id: i64| id < NUM_LEADING_SPECIAL as i64;
    for (i, (&id, &m)) in ids.iter().zip(mask).enumerate() {
        if m == 0 || special(id) || rng.next_f64() >= prob {
            continue;
        }
        positions.push(i as i64);
        targets.push(id);
        let r = rng.next_f64();
        if r < 0.8 {
            corrupted[i] = MASK_ID as i64;
        } else if r < 0.9 {
            corrupted[i] = NUM_LEADING_SPECIAL as i64
                + rng.below(vocab as u64 - NUM_LEADING_SPECIAL as u64 - 1) as i64;
        }
    }
    if positions.is_empty() {
        let candidates: Vec<usize> = (0..ids.len())
            .filter(|&i| mask[i] == 1 && !special(ids[i]))
            .collect();
        if !candidates.is_empty() {
            let i = candidates[rng.below(candidates.len() as u64) as usize];
            positions.push(i as i64);
            targets.push(ids[i]);
            corrupted[i] = MASK_ID as i64;
        }
    }
    (corrupted, positions, targets)
}

/// Loss and accuracy of the MLM head on one batch: `(loss tensor, correct, chosen)`.
fn mlm_step(
    model: &Model,
    seqs: &[&[u32]],
    prob: f64,
    rng: &mut SplitMix64,
    train: bool,
) -> Result<(Tensor, i64, i64)> {
    let lm = model
        .lm_head
        .as_ref()
        .ok_or_else(|| Error::param("model", "has no MLM head"))?;
    let b = pad_batch(seqs);
    let (corrupted, positions, targets) =
        mask_tokens(&b.ids, &b.mask, model.config.vocab_size, prob, rng);
    let dev = model.device();
    let shape = [b.batch as i64, b.len as i64];
    let ids = Tensor::from_slice(&corrupted).view(shape).to_device(dev);
    let mask = Tensor::from_slice(&b.mask).view(shape).to_device(dev);
    let hidden = model.encoder.forward(&ids, &mask, train);
    let h = hidden
        .view([-1, model.config.hidden_size as i64])
        .index_select(0, &Tensor::from_slice(&positions).to_device(dev));
    let logits = lm.forward(&h, &model.encoder.word_embeddings, train);
    let target = Tensor::from_slice(&targets).to_device(dev);
    let loss = logits.cross_entropy_for_logits(&target);
    let correct = logits
        .argmax(-1, false)
        .eq_tensor(&target)
        .sum(Kind::Int64)
        .int64_value(&[]);
    Ok((loss, correct, targets.len() as i64))
}

/// Held-out masked loss and accuracy with a fixed masking stream.
fn evaluate(model: &Model, valid: &[Vec<u32>], cfg: &MlmConfig) -> Result<(f64, f64)> {
    let mut rng = SplitMix64::derive(cfg.seed, "mlm-valid-mask");
    let (mut loss_sum, mut correct, mut chosen) = (0.0, 0i64, 0i64);
    tch::no_grad(|| -> Result<()> {
        for idx in crate::predict::length_sorted_batches(valid, 128) {
            let seqs: Vec<&[u32]> = idx.iter().map(|&i| valid[i].as_slice()).collect();
            let (loss, c, n) = mlm_step(model, &seqs, cfg.mask_prob, &mut rng, false)?;
            loss_sum += loss.double_value(&[]) * n as f64;
            correct += c;
            chosen += n;
        }
        Ok(())
    })?;
    let n = chosen.max(1) as f64;
    Ok((loss_sum / n, correct as f64 / n))
}

fn read_exclusions(paths: &[PathBuf], tokenizer: &SmilesTokenizer) -> Result<HashSet<String>> {
    let mut set = HashSet::new();
    let opts = TableOptions {
        skip_bad_rows: true,
        ..TableOptions::default()
    };
    for p in paths {
        let d = data::read_smiles(p, tokenizer, &opts)?;
        set.extend(d.records.into_iter().map(|r| r.smiles));
    }
    Ok(set)
}

fn build_model(
    init: &InitFrom,
    tokenizer: SmilesTokenizer,
    device: Device,
    seed: u64,
) -> Result<Model> {
    let parts = ModelParts {
        lm_head: true,
        num_labels: None,
    };
    let meta = ModelMeta {
        task: Task::Encoder,
        ..ModelMeta::default()
    };
    match init {
        InitFrom::Random(c) => Model::new((**c).clone(), parts, meta, tokenizer, device, seed),
        InitFrom::Model(dir) => {
            let mut m = Model::load_with_parts(dir, device, Some(parts), seed)?;
            m.meta = meta;
            Ok(m)
        }
    }
}

/// The report of `run` when `out` holds it finished (its run.json is `run` and its
/// metrics.json exists), whether or not its model was kept.
pub fn finished_record(run: &MlmRun, out: &Path) -> Result<Option<MlmReport>> {
    fsutil::finished_record(run, out, "run.json", files::METRICS)
}

/// Runs, resumes, or returns the finished result of an MLM run in `out`.
pub fn mlm(
    run: &MlmRun,
    device: Device,
    out: &Path,
    monitor: &mut dyn Monitor,
) -> Result<MlmReport> {
    let cfg = &run.mlm;
    if cfg.batch_size == 0 || cfg.epochs == 0 || cfg.chunk_size < cfg.batch_size {
        return Err(Error::param(
            "mlm",
            "batch size and epochs must be positive and chunk_size ≥ batch size",
        ));
    }
    if !(0.0..=1.0).contains(&cfg.augment) {
        return Err(Error::param(
            "--augment",
            format!("{} is not a share between 0 and 1", cfg.augment),
        ));
    }
    if !(0.0 < cfg.mask_prob && cfg.mask_prob < 1.0) {
        return Err(Error::param(
            "--mask-prob",
            format!("{} is not in (0, 1)", cfg.mask_prob),
        ));
    }
    fsutil::claim_dir(out, "run.json", "out")?;
    let run_path = out.join("run.json");
    if run_path.is_file() {
        let previous: MlmRun = fsutil::read_json(&run_path)?;
        if &previous != run {
            return Err(Error::param(
                "--out",
                format!(
                    "{} holds a different MLM run (see its run.json)",
                    out.display()
                ),
            ));
        }
        // Finished, unless its model was not kept (e.g. a study carried to another machine
        // with only its runs' records): then it runs again.
        let model_kept = out
            .join(files::MODEL)
            .join(crate::model::files::CONFIG)
            .is_file();
        if out.join(files::METRICS).is_file() && model_kept {
            return fsutil::read_json(&out.join(files::METRICS));
        }
    }
    fsutil::write_json(&run_path, run)?;

    let tokenizer = match &run.init {
        InitFrom::Model(dir) if dir.join(crate::model::files::TOKENIZER).is_file() => {
            SmilesTokenizer::load(&dir.join(crate::model::files::TOKENIZER))?
        }
        _ => SmilesTokenizer::molformer(),
    };
    monitor.event(&Event::Message {
        text: format!("scanning {}", run.corpus.display()),
    });
    let exclude = read_exclusions(&run.exclude, &tokenizer)?;
    let mut corpus = Corpus {
        path: run.corpus.clone(),
        table: run.table.clone(),
        tokenizer: &tokenizer,
        exclude,
        valid_mod: u64::MAX,
        max_tokens: cfg.max_tokens,
    };
    // Hold out about valid_size molecules: the hash modulus comes from the number of SMILES
    // entries (a quick pass without tokenizing), so it is the same on every run of the corpus.
    let entries = count_entries(&run.corpus, &run.table)?;
    corpus.valid_mod = if cfg.valid_size == 0 {
        u64::MAX
    } else {
        (entries / cfg.valid_size as u64).max(2)
    };
    let scan = corpus.scan(cfg.valid_size * 2)?;
    if scan.train == 0 {
        return Err(Error::BadFile {
            path: run.corpus.clone(),
            reason: "no usable training molecules".into(),
        });
    }
    monitor.event(&Event::Message {
        text: format!(
            "corpus: {} training, {} held out, {} excluded{}, {} skipped",
            scan.train,
            scan.valid.len(),
            scan.excluded,
            if run.exclude.is_empty() {
                " (no --exclude table)".to_string()
            } else {
                format!(
                    " (in {})",
                    run.exclude
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            },
            scan.skipped
        ),
    });

    if cfg.augment > 0.0 {
        monitor.event(&Event::Message {
            text: format!(
                "SMILES augmentation on {:.0} % of training molecules per pass",
                100.0 * cfg.augment
            ),
        });
    }
    let mut model = build_model(&run.init, tokenizer.clone(), device, cfg.seed)?;
    model.encoder.set_feature_redraw(cfg.redraw_features);
    model.meta.provenance = Some(format!(
        "lipo {} mlm on {}",
        crate::VERSION,
        run.corpus.display()
    ));
    model.set_trainable(|_| true);
    let mut opt = Adam::new(model.named_tensors(), AdamConfig::adamw(cfg.weight_decay));
    let steps_per_epoch = scan.train.div_ceil(cfg.batch_size as u64);
    let total_steps = cfg
        .max_steps
        .unwrap_or(steps_per_epoch * cfg.epochs as u64)
        .min(steps_per_epoch * cfg.epochs as u64);

    let ckpt = out.join(files::CHECKPOINT);
    let mut st = MlmState {
        run: run.clone(),
        step: 0,
        epoch: 1,
        chunk: 0,
        batch_in_chunk: 0,
        molecules: 0,
        train_seconds: 0.0,
        history: vec![],
        window: (0.0, 0, 0),
    };
    let mut say = |text: String| {
        monitor.event(&Event::Message { text });
    };
    let restored = crate::checkpoint::restore(&ckpt, &model, &mut opt, device, &mut say)?;
    if let Some(saved) = restored {
        st = saved;
        monitor.event(&Event::Message {
            text: format!(
                "resuming at step {} (epoch {}, chunk {})",
                st.step, st.epoch, st.chunk
            ),
        });
    }

    monitor.event(&Event::Start {
        stage: "mlm".into(),
        total: total_steps,
    });
    let mut window_start = Instant::now();
    let mut session_start = Instant::now();
    let mut cancelled = false;
    'epochs: while st.epoch <= cfg.epochs && st.step < total_steps {
        let mut chunks = corpus.chunks(cfg.chunk_size)?;
        for _ in 0..st.chunk {
            chunks.next_chunk(true, None)?;
        }
        loop {
            let augment = (cfg.augment > 0.0).then(|| {
                let key = format!("mlm-augment-e{}-c{}", st.epoch, st.chunk);
                (cfg.augment, SplitMix64::derive(cfg.seed, &key))
            });
            let Some(mut seqs) = chunks.next_chunk(false, augment)? else {
                break;
            };
            let mut rng = SplitMix64::derive(cfg.seed, &format!("mlm-e{}-c{}", st.epoch, st.chunk));
            rng.shuffle(&mut seqs);
            let lengths: Vec<usize> = seqs.iter().map(|s| s.len()).collect();
            let rows: Vec<usize> = (0..seqs.len()).collect();
            let batches = crate::train::bucketed_batches(&rows, &lengths, cfg.batch_size, &mut rng);
            for rows in batches.iter().skip(st.batch_in_chunk) {
                tch::manual_seed((cfg.seed ^ st.step.wrapping_mul(0x9e37_79b9)) as i64);
                let mut mrng = SplitMix64::derive(cfg.seed, &format!("mlm-mask-{}", st.step));
                let batch: Vec<&[u32]> = rows.iter().map(|&r| seqs[r].as_slice()).collect();
                let (loss, _, _) = mlm_step(&model, &batch, cfg.mask_prob, &mut mrng, true)?;
                opt.zero_grad();
                loss.backward();
                opt.clip_grad_norm(cfg.grad_clip);
                let lr = schedule(cfg.lr, st.step, total_steps, cfg.warmup_steps, true);
                opt.step(lr);
                let l = loss.double_value(&[]);
                if !l.is_finite() {
                    return Err(Error::Training(format!(
                        "MLM loss became {l} at step {}; try a lower --lr",
                        st.step
                    )));
                }
                st.step += 1;
                st.batch_in_chunk += 1;
                st.molecules += rows.len() as u64;
                st.window.0 += l;
                st.window.1 += 1;
                st.window.2 += rows.len() as u64;
                let go_on = monitor.event(&Event::Step {
                    step: st.step,
                    total: total_steps,
                    loss: l,
                });
                if st.step % cfg.eval_every == 0 || st.step == total_steps {
                    let (vl, va) = evaluate(&model, &scan.valid, cfg)?;
                    let secs = window_start.elapsed().as_secs_f64();
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
                    monitor.event(&Event::Message {
                        text: format!(
                            "step {:6}  train {:.4}  valid {:.4}  masked accuracy {:.4}  {:.0} mol/s",
                            e.step, e.train_loss, e.valid_loss, e.valid_accuracy, e.mols_per_s
                        ),
                    });
                    st.history.push(e);
                    st.window = (0.0, 0, 0);
                    window_start = Instant::now();
                }
                if !go_on || st.step % cfg.checkpoint_every == 0 || st.step == total_steps {
                    st.train_seconds += session_start.elapsed().as_secs_f64();
                    session_start = Instant::now();
                    crate::checkpoint::write(&model, &opt, &st, &ckpt)?;
                }
                if !go_on {
                    cancelled = true;
                    break 'epochs;
                }
                if st.step >= total_steps {
                    break 'epochs;
                }
            }
            st.chunk += 1;
            st.batch_in_chunk = 0;
        }
        st.epoch += 1;
        st.chunk = 0;
    }
    if cancelled {
        return Err(Error::Cancelled(format!(
            "MLM stopped at step {}; checkpoint in {} — run the same command to resume",
            st.step,
            ckpt.display()
        )));
    }
    st.train_seconds += session_start.elapsed().as_secs_f64();
    let (vl, va) = evaluate(&model, &scan.valid, cfg)?;
    model.save(&out.join(files::MODEL))?;
    let report = MlmReport {
        steps: st.step,
        molecules: st.molecules,
        corpus_train: scan.train,
        corpus_valid: scan.valid.len(),
        excluded: scan.excluded,
        skipped: scan.skipped,
        history: st.history.clone(),
        valid_accuracy: va,
        valid_perplexity: vl.exp(),
        mols_per_s: st.molecules as f64 / st.train_seconds.max(1e-9),
        train_seconds: st.train_seconds,
        device: crate::device::describe(device),
    };
    plot_curves(&out.join(files::CURVES_PNG), &report.history)?;
    fsutil::write_json(&out.join(files::METRICS), &report)?;
    crate::checkpoint::remove(&ckpt);
    Ok(report)
}

/// Training and held-out loss per evaluation, and masked accuracy.
pub fn plot_curves(path: &Path, history: &[MlmEval]) -> Result<()> {
    use crate::plot::Series;
    let pts = |f: fn(&MlmEval) -> f64| history.iter().map(|h| (h.step as f64, f(h))).collect();
    crate::plot::lines(
        path,
        "Masked-language-model training",
        "step",
        "cross-entropy / accuracy",
        &[
            Series {
                name: "train loss".into(),
                points: pts(|h| h.train_loss),
            },
            Series {
                name: "held-out loss".into(),
                points: pts(|h| h.valid_loss),
            },
            Series {
                name: "held-out masked accuracy".into(),
                points: pts(|h| h.valid_accuracy),
            },
        ],
    )
}

/// The architecture a random-init MLM run builds when none is given.
pub fn default_config() -> Config {
    Config::small()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn augmentation_rewrites_molecules_reproducibly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("corpus.smi");
        let smiles = [
            "CCO",
            "c1ccccc1O",
            "CC(=O)Nc1ccc(O)cc1",
            "C",
            "OC(=O)C1CCCN1",
        ];
        std::fs::write(&path, smiles.join("\n")).unwrap();
        let tokenizer = SmilesTokenizer::molformer();
        let corpus = Corpus {
            path: path.clone(),
            table: TableOptions::default(),
            tokenizer: &tokenizer,
            exclude: HashSet::new(),
            valid_mod: u64::MAX,
            max_tokens: 256,
        };
        let read = |augment: Option<(f64, SplitMix64)>| {
            let mut it = corpus.chunks(100).unwrap();
            it.next_chunk(false, augment).unwrap().unwrap()
        };
        let plain = read(None);
        let given: Vec<Vec<u32>> = smiles
            .iter()
            .map(|s| tokenizer.encode(s).unwrap())
            .collect();
        assert_eq!(plain, given);
        assert_eq!(read(Some((0.0, SplitMix64::new(3)))), given);
        let rounds: Vec<Vec<Vec<u32>>> = (0..20)
            .map(|k| read(Some((1.0, SplitMix64::new(k)))))
            .collect();
        // Same molecules in the same slots: a one-atom molecule has one way to be written.
        assert!(rounds.iter().all(|r| r.len() == 5 && r[3] == given[3]));
        assert!(rounds.iter().any(|r| r[2] != given[2]), "never rewritten");
        // A rewrite keeps the molecule's tokens, only their order and ring labels change.
        let atoms = |ids: &[u32]| {
            let mut v: Vec<u32> = ids.to_vec();
            v.retain(|&t| {
                let tok = tokenizer.id_to_token(t).unwrap_or_default();
                !"()0123456789".contains(tok.as_str())
            });
            v.sort_unstable();
            v
        };
        for r in &rounds {
            for (a, b) in r.iter().zip(&given) {
                assert_eq!(atoms(a), atoms(b));
            }
        }
        assert_eq!(read(Some((1.0, SplitMix64::new(7)))), rounds[7]);
    }

    #[test]
    fn masking_follows_bert() {
        let mut rng = SplitMix64::new(1);
        let n = 20000;
        let ids: Vec<i64> = (0..n)
            .map(|i| if i % 10 == 0 { 0 } else { 4 + (i % 50) })
            .collect();
        let mask = vec![1i64; n as usize];
        let (cor, pos, tgt) = mask_tokens(&ids, &mask, 2362, 0.15, &mut rng);
        let eligible = ids.iter().filter(|&&i| i >= 4).count() as f64;
        let frac = pos.len() as f64 / eligible;
        assert!((frac - 0.15).abs() < 0.01, "{frac}");
        assert!(
            pos.iter().all(|&p| ids[p as usize] >= 4),
            "special tokens are never chosen"
        );
        let masked = pos
            .iter()
            .filter(|&&p| cor[p as usize] == MASK_ID as i64)
            .count() as f64
            / pos.len() as f64;
        assert!((masked - 0.8).abs() < 0.03, "{masked}");
        let same = pos
            .iter()
            .filter(|&&p| cor[p as usize] == ids[p as usize])
            .count() as f64
            / pos.len() as f64;
        assert!((same - 0.1).abs() < 0.03, "{same}");
        assert_eq!(
            tgt,
            pos.iter().map(|&p| ids[p as usize]).collect::<Vec<_>>()
        );
        // Unchosen positions are untouched.
        let chosen: HashSet<i64> = pos.iter().copied().collect();
        assert!((0..n)
            .filter(|i| !chosen.contains(i))
            .all(|i| cor[i as usize] == ids[i as usize]));
    }
}
