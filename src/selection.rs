//! Task 2 of the study: score every row of an external labelled table by its influence on the
//! validation loss of a fine-tuned model, report molecules it shares with the Lipophilicity
//! splits, and select a subset to add to training.

use std::path::Path;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::data::{Dataset, Split};
use crate::dedupe::{MatchKind, MoleculeIndex};
use crate::error::{Error, Result};
use crate::influence::{self, Examples, LissaConfig, ParamSet};
use crate::model::Model;
use crate::rng::SplitMix64;

/// How H⁻¹v is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Solver {
    /// LiSSA recursion (stochastic, scales to large parameter sets).
    Lissa,
    /// Conjugate gradient over all training rows to tolerance (small parameter sets).
    Exact,
}

/// Influence-scoring settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ScoreConfig {
    /// Parameters the influence is computed over.
    pub params: ParamSet,
    /// Inverse-HVP solver.
    pub solver: Solver,
    /// LiSSA settings (their λ = scale·damping is also the exact solver's ridge).
    pub lissa: LissaConfig,
    /// Relative residual at which conjugate gradient stops.
    pub cg_tol: f64,
    /// Conjugate-gradient iteration cap.
    pub cg_max_iter: usize,
    /// Training rows used for Hessian products (0 = all); a seeded sample otherwise.
    pub hessian_rows: usize,
}

impl Default for ScoreConfig {
    fn default() -> Self {
        ScoreConfig {
            params: ParamSet::Last(1),
            solver: Solver::Lissa,
            lissa: LissaConfig::default(),
            cg_tol: 1e-4,
            cg_max_iter: 200,
            hessian_rows: 0,
        }
    }
}

/// Where an external molecule also occurs in the labelled table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Duplicate {
    /// "train", "validation" or "test".
    pub split: String,
    /// Line of the matching row in the labelled table.
    pub line: usize,
    /// The matching SMILES.
    pub smiles: String,
    /// How it matched: exact, stereo_stripped or graph.
    pub how: String,
}

/// One scored external row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoredRow {
    /// Line in the external file.
    pub line: usize,
    /// SMILES as written.
    pub smiles: String,
    /// Label.
    pub label: f64,
    /// Koh & Liang I(z): positive = adding z is predicted to raise the validation loss.
    pub influence: f64,
    /// −I(z): positive = predicted to help.
    pub helpfulness: f64,
    /// 1 = most helpful.
    pub rank: usize,
    /// Set when the molecule is in the labelled table.
    pub duplicate: Option<Duplicate>,
    /// False for duplicates of validation or test molecules: they never enter training.
    pub selectable: bool,
}

/// The scores plus what produced them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScoreReport {
    /// Rows in external-file order.
    pub rows: Vec<ScoredRow>,
    /// Parameter elements the influence covers.
    pub parameters: usize,
    /// Settings.
    pub config: ScoreConfig,
    /// ‖h‖ per LiSSA step (or CG residual per iteration).
    pub norm_history: Vec<f64>,
    /// Whether the inverse-HVP solver converged.
    pub converged: bool,
    /// The LiSSA scale used (0 for the exact solver).
    pub lissa_scale: f64,
    /// Wall seconds of scoring.
    pub seconds: f64,
    /// Duplicates found, by split and kind.
    pub duplicates: Vec<(String, String, usize)>,
}

fn standardised(model: &Model, data: &Dataset, rows: &[usize]) -> (Vec<Vec<u32>>, Vec<f64>) {
    let seqs = rows.iter().map(|&r| data.records[r].ids.clone()).collect();
    let ys = rows
        .iter()
        .map(|&r| {
            (data.records[r].label.unwrap_or(f64::NAN) - model.meta.label_mean)
                / model.meta.label_sd
        })
        .collect();
    (seqs, ys)
}

/// Finds, for each external row, a molecule of `data` it duplicates (and in which split).
pub fn find_duplicates(
    data: &Dataset,
    split: &Split,
    external: &Dataset,
) -> Vec<Option<Duplicate>> {
    let smiles: Vec<&str> = data.records.iter().map(|r| r.smiles.as_str()).collect();
    let index = MoleculeIndex::new(&smiles);
    let mut which = vec![""; data.records.len()];
    for (name, rows) in [
        ("train", &split.train),
        ("validation", &split.valid),
        ("test", &split.test),
    ] {
        for &r in rows.iter() {
            which[r] = name;
        }
    }
    external
        .records
        .iter()
        .map(|e| {
            index.find(&e.smiles).map(|(i, how)| Duplicate {
                split: which[i].to_string(),
                line: data.records[i].line,
                smiles: data.records[i].smiles.clone(),
                how: match how {
                    MatchKind::Exact => "exact",
                    MatchKind::StereoStripped => "stereo_stripped",
                    MatchKind::Graph => "graph",
                }
                .into(),
            })
        })
        .collect()
}

/// Scores every row of `external` with `model` (fine-tuned on `split.train` of `data`):
/// the Hessian comes from training rows, the target gradient from validation rows — never
/// from test rows.
pub fn score_external(
    model: &Model,
    data: &Dataset,
    split: &Split,
    external: &Dataset,
    cfg: &ScoreConfig,
) -> Result<ScoreReport> {
    let t0 = Instant::now();
    if external.records.iter().any(|r| r.label.is_none()) {
        return Err(Error::BadFile {
            path: external.path.clone(),
            reason: "external rows need labels".into(),
        });
    }
    if split.valid.is_empty() {
        return Err(Error::param(
            "split",
            "influence needs validation rows (its target)",
        ));
    }
    let params = influence::select_params(model, &cfg.params)?;
    let n_params: usize = params.iter().map(|(_, t)| t.numel()).sum();
    let mut hess_rows = split.train.clone();
    if cfg.hessian_rows > 0 && cfg.hessian_rows < hess_rows.len() {
        SplitMix64::derive(cfg.lissa.seed, "hessian-rows").shuffle(&mut hess_rows);
        hess_rows.truncate(cfg.hessian_rows);
    }
    let (tr_seqs, tr_ys) = standardised(model, data, &hess_rows);
    let (va_seqs, va_ys) = standardised(model, data, &split.valid);
    let ext_rows: Vec<usize> = (0..external.records.len()).collect();
    let (ex_seqs, ex_ys) = standardised(model, external, &ext_rows);
    tracing::info!("preparing {} training rows", tr_seqs.len());
    let train = Examples::prepare(model, &cfg.params, &tr_seqs, &tr_ys)?;
    let valid = Examples::prepare(model, &cfg.params, &va_seqs, &va_ys)?;
    let ext = Examples::prepare(model, &cfg.params, &ex_seqs, &ex_ys)?;
    tracing::info!("validation gradient");
    let all_valid: Vec<usize> = (0..valid.len()).collect();
    let v = influence::gradient(model, &params, &valid, &all_valid, 64)?;
    tracing::info!("inverse HVP ({:?})", cfg.solver);
    let inv = match cfg.solver {
        Solver::Lissa => influence::lissa(model, &params, &train, &v, &cfg.lissa)?,
        Solver::Exact => influence::conjugate_gradient(
            model,
            &params,
            &train,
            &v,
            if cfg.lissa.scale > 0.0 {
                cfg.lissa.lambda()
            } else {
                let all: Vec<usize> = (0..train.len()).collect();
                1.5 * influence::largest_eigenvalue(model, &params, &train, &all, 20)?
                    * cfg.lissa.damping
            },
            cfg.cg_tol,
            cfg.cg_max_iter,
        )?,
    };
    tracing::info!("scoring {} external rows", ext.len());
    let scores = influence::influence(model, &params, &inv.value, &ext)?;
    model.set_trainable(|_| true);
    let (rows, duplicates) = scored_rows(data, split, external, &scores);
    Ok(ScoreReport {
        rows,
        parameters: n_params,
        config: cfg.clone(),
        norm_history: inv.norm_history,
        converged: inv.converged,
        lissa_scale: inv.scale,
        seconds: t0.elapsed().as_secs_f64(),
        duplicates,
    })
}

/// The external rows with their influence (negative helps), ranks (1 = most helpful) and
/// duplicates of the labelled table's molecules; and the duplicates counted by split and kind.
fn scored_rows(
    data: &Dataset,
    split: &Split,
    external: &Dataset,
    scores: &[f64],
) -> (Vec<ScoredRow>, Vec<(String, String, usize)>) {
    let dups = find_duplicates(data, split, external);
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let mut rank = vec![0; scores.len()];
    for (r, &i) in order.iter().enumerate() {
        rank[i] = r + 1;
    }
    let rows: Vec<ScoredRow> = external
        .records
        .iter()
        .enumerate()
        .map(|(i, rec)| ScoredRow {
            line: rec.line,
            smiles: rec.smiles.clone(),
            label: rec.label.unwrap_or(f64::NAN),
            influence: scores[i],
            helpfulness: -scores[i],
            rank: rank[i],
            selectable: !matches!(&dups[i], Some(d) if d.split != "train"),
            duplicate: dups[i].clone(),
        })
        .collect();
    let mut counts: std::collections::BTreeMap<(String, String), usize> = Default::default();
    for d in dups.iter().flatten() {
        *counts.entry((d.split.clone(), d.how.clone())).or_default() += 1;
    }
    (
        rows,
        counts.into_iter().map(|((s, h), n)| (s, h, n)).collect(),
    )
}

/// TracIn (Pruthi et al. 2020, the checkpoint form) of every row of `external`: for each
/// saved checkpoint k of a run (model folder, learning rate η_k),
///
/// ```text
/// TracIn(z) = Σ_k η_k ∇L_val(θ_k)ᵀ ∇ℓ(z, θ_k)
/// ```
///
/// over the parameters `cfg.params`: how much a gradient step on z would have lowered the
/// validation loss along the run's trajectory. Rows carry it as helpfulness (positive helps),
/// so `influence` holds −TracIn and the selections rank them like influence scores. No
/// Hessian: `norm_history` is empty and `converged` true.
pub fn tracin_external(
    checkpoints: &[(std::path::PathBuf, f64)],
    data: &Dataset,
    split: &Split,
    external: &Dataset,
    cfg: &ScoreConfig,
    device: tch::Device,
) -> Result<ScoreReport> {
    use crate::peft::LoadModel;
    let t0 = Instant::now();
    if checkpoints.is_empty() {
        return Err(Error::param(
            "checkpoints",
            "TracIn needs the run's epoch checkpoints (train with keep_epochs)",
        ));
    }
    if split.valid.is_empty() {
        return Err(Error::param(
            "split",
            "TracIn needs validation rows (its target)",
        ));
    }
    let ext_rows: Vec<usize> = (0..external.records.len()).collect();
    let mut minus_tracin = vec![0.0; ext_rows.len()];
    let mut n_params = 0;
    for (dir, eta) in checkpoints {
        let model = Model::load(dir, device)?;
        let params = influence::select_params(&model, &cfg.params)?;
        n_params = params.iter().map(|(_, t)| t.numel()).sum();
        let (va_seqs, va_ys) = standardised(&model, data, &split.valid);
        let (ex_seqs, ex_ys) = standardised(&model, external, &ext_rows);
        let valid = Examples::prepare(&model, &cfg.params, &va_seqs, &va_ys)?;
        let ext = Examples::prepare(&model, &cfg.params, &ex_seqs, &ex_ys)?;
        let all_valid: Vec<usize> = (0..valid.len()).collect();
        let v = influence::gradient(&model, &params, &valid, &all_valid, 64)?;
        // influence() with s = ∇L_val gives −∇L_valᵀ∇ℓ(z).
        for (acc, x) in minus_tracin
            .iter_mut()
            .zip(influence::influence(&model, &params, &v, &ext)?)
        {
            *acc += eta * x;
        }
    }
    let (rows, duplicates) = scored_rows(data, split, external, &minus_tracin);
    Ok(ScoreReport {
        rows,
        parameters: n_params,
        config: cfg.clone(),
        norm_history: Vec::new(),
        converged: true,
        lissa_scale: 0.0,
        seconds: t0.elapsed().as_secs_f64(),
        duplicates,
    })
}

/// Which external rows join training.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Selection {
    /// Every selectable row.
    All,
    /// The most helpful fraction (the study: 0.5).
    TopFraction(f64),
    /// The least helpful fraction (a sanity check: should be worst).
    BottomFraction(f64),
    /// The k most helpful rows.
    TopK(usize),
    /// Rows predicted to help at all (helpfulness > 0).
    HelpfulOnly,
    /// A seeded random fraction (the baseline influence must beat).
    RandomFraction(f64, u64),
}

/// Indices (into `rows`) of the selected rows; duplicates of validation/test molecules are
/// never selected. Fractions are of the selectable rows.
pub fn select(rows: &[ScoredRow], how: &Selection) -> Result<Vec<usize>> {
    let mut pool: Vec<usize> = (0..rows.len()).filter(|&i| rows[i].selectable).collect();
    pool.sort_by_key(|&i| rows[i].rank);
    let take = |f: f64| -> Result<usize> {
        if !(0.0..=1.0).contains(&f) {
            return Err(Error::param("fraction", format!("{f} is not in [0, 1]")));
        }
        Ok((pool.len() as f64 * f).round() as usize)
    };
    let mut chosen = match how {
        Selection::All => pool,
        Selection::TopFraction(f) => pool[..take(*f)?].to_vec(),
        Selection::BottomFraction(f) => pool[pool.len() - take(*f)?..].to_vec(),
        Selection::TopK(k) => pool[..(*k).min(pool.len())].to_vec(),
        Selection::HelpfulOnly => pool
            .into_iter()
            .filter(|&i| rows[i].helpfulness > 0.0)
            .collect(),
        Selection::RandomFraction(f, seed) => {
            let n = take(*f)?;
            SplitMix64::derive(*seed, "random-selection").shuffle(&mut pool);
            pool.truncate(n);
            pool
        }
    };
    chosen.sort_unstable();
    Ok(chosen)
}

/// Writes scored rows as CSV: line, smiles, label, influence, helpfulness, rank, duplicate.
pub fn write_scores(path: &Path, rows: &[ScoredRow]) -> Result<()> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let io = |e: csv::Error| Error::io(path, std::io::Error::other(e));
    w.write_record([
        "line",
        "smiles",
        "label",
        "influence",
        "helpfulness",
        "rank",
        "selectable",
        "duplicate_of",
    ])
    .map_err(io)?;
    for r in rows {
        let dup = r
            .duplicate
            .as_ref()
            .map(|d| format!("{} line {} ({})", d.split, d.line, d.how))
            .unwrap_or_default();
        w.write_record([
            r.line.to_string(),
            r.smiles.clone(),
            r.label.to_string(),
            format!("{:.6e}", r.influence),
            format!("{:.6e}", r.helpfulness),
            r.rank.to_string(),
            r.selectable.to_string(),
            dup,
        ])
        .map_err(io)?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| Error::io(path, std::io::Error::other(e.to_string())))?;
    crate::fsutil::write_atomic(path, &bytes)
}

/// Writes the chosen rows as a `smiles,label` table that `finetune` can add to training.
pub fn write_selected(path: &Path, rows: &[ScoredRow], chosen: &[usize]) -> Result<()> {
    let mut s = String::from("smiles,label\n");
    for &i in chosen {
        s.push_str(&format!("{},{}\n", rows[i].smiles, rows[i].label));
    }
    crate::fsutil::write_atomic(path, s.as_bytes())
}

/// Writes `influence_hist.png` (helpfulness histogram) and `influence_vs_label.png`
/// (helpfulness against label) of `report` into `out`.
pub fn plot_scores(out: &Path, report: &ScoreReport) -> Result<()> {
    let helpful: Vec<f64> = report.rows.iter().map(|r| r.helpfulness).collect();
    let labels: Vec<f64> = report.rows.iter().map(|r| r.label).collect();
    crate::plot::histogram(
        &out.join("influence_hist.png"),
        "Helpfulness of external molecules",
        "helpfulness = -I(z)",
        &helpful,
        30,
    )?;
    crate::plot::scatter(
        &out.join("influence_vs_label.png"),
        "Helpfulness vs label",
        "label",
        "helpfulness = -I(z)",
        &labels,
        &helpful,
    )
}
