//! Influence functions (Koh & Liang 2017) with LiSSA inverse-Hessian-vector products
//! (Agarwal, Bullins & Hazan 2017), and an exact conjugate-gradient solver to check them.
//!
//! For a training objective L(θ) = mean over the training rows of the squared error on
//! standardised labels, the influence of up-weighting an external example z on the
//! validation loss is
//!
//! ```text
//! I(z) = −∇L_val(θ)ᵀ H⁻¹ ∇ℓ(z, θ)        (H = ∇²L_train(θ) + λI)
//! ```
//!
//! **Sign:** I(z) < 0 means that adding z is predicted to *lower* the validation loss — z
//! helps. lipo reports `helpfulness = −I(z)` and ranks by it, most helpful first.
//!
//! Gradients are taken in evaluation mode (no dropout), so every quantity is deterministic,
//! and only over a chosen parameter set ([`ParamSet`]); everything else is frozen.

use serde::{Deserialize, Serialize};
use tch::{Kind, Reduction, Tensor};

use crate::error::{Error, Result};
use crate::model::Model;
use crate::rng::SplitMix64;
use crate::tokenizer::pad_batch;

pub use crate::peft::{select_params, ParamSet};

/// Molecules with standardised targets, prepared for repeated loss evaluations: the output
/// of the frozen part of the network in front of the selected parameters is computed once
/// and cached (per molecule for `last:N`, pooled for `head`), so each gradient or
/// Hessian-vector product only runs the part that is differentiated.
pub struct Examples {
    targets: Vec<f64>,
    inputs: Inputs,
}

enum Inputs {
    Tokens(Vec<Vec<u32>>),
    /// Hidden states `[len, hidden]` entering encoder layer `from`.
    Hidden {
        from: usize,
        states: Vec<Tensor>,
    },
    /// Pooled encoder output `[n, hidden]`.
    Pooled(Tensor),
}

impl Examples {
    /// Prepares `seqs` with standardised `targets` for influence over `set`.
    pub fn prepare(
        model: &Model,
        set: &ParamSet,
        seqs: &[Vec<u32>],
        targets: &[f64],
    ) -> Result<Examples> {
        let layers = model.config.num_hidden_layers;
        let inputs = match set {
            ParamSet::All | ParamSet::Adapters => Inputs::Tokens(seqs.to_vec()),
            ParamSet::Head => {
                let rows = crate::predict::embed(model, seqs, 64)?;
                let flat: Vec<f32> = rows.into_iter().flatten().collect();
                let h = model.config.hidden_size as i64;
                Inputs::Pooled(
                    Tensor::from_slice(&flat)
                        .view([-1, h])
                        .to_device(model.device()),
                )
            }
            ParamSet::Last(n) => {
                let from = layers.saturating_sub(*n);
                let mut states: Vec<Tensor> = (0..seqs.len()).map(|_| Tensor::new()).collect();
                tch::no_grad(|| {
                    for idx in crate::predict::length_sorted_batches(seqs, 64) {
                        let batch: Vec<&[u32]> = idx.iter().map(|&i| seqs[i].as_slice()).collect();
                        let (ids, mask) = model.batch_tensors(&pad_batch(&batch));
                        let x = model.encoder.embed_tokens(&ids, false);
                        let x = model.encoder.run_layers(&x, &mask, 0..from, false);
                        for (r, &i) in idx.iter().enumerate() {
                            states[i] = x.get(r as i64).narrow(0, 0, seqs[i].len() as i64).copy();
                        }
                    }
                });
                Inputs::Hidden { from, states }
            }
        };
        Ok(Examples {
            targets: targets.to_vec(),
            inputs,
        })
    }

    /// Number of examples.
    pub fn len(&self) -> usize {
        self.targets.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }
}

/// Mean squared error (standardised units) of `model` on `rows` of `ex`, in eval mode.
fn loss(model: &Model, ex: &Examples, rows: &[usize]) -> Result<Tensor> {
    let y: Vec<f32> = rows.iter().map(|&r| ex.targets[r] as f32).collect();
    let y = Tensor::from_slice(&y).to_device(model.device());
    Ok(outputs(model, ex, rows)?.mse_loss(&y, Reduction::Mean))
}

/// The model's outputs `[rows]` (standardised units) on `rows` of `ex`, in eval mode.
fn outputs(model: &Model, ex: &Examples, rows: &[usize]) -> Result<Tensor> {
    let dev = model.device();
    let head = model
        .head
        .as_ref()
        .ok_or_else(|| Error::param("model", "has no regression head"))?;
    let pred = match &ex.inputs {
        Inputs::Tokens(seqs) => {
            let batch: Vec<&[u32]> = rows.iter().map(|&r| seqs[r].as_slice()).collect();
            let (ids, mask) = model.batch_tensors(&pad_batch(&batch));
            model.head_forward(&ids, &mask, false)?
        }
        Inputs::Pooled(p) => head.forward(
            &p.index_select(
                0,
                &Tensor::from_slice(&rows.iter().map(|&r| r as i64).collect::<Vec<_>>())
                    .to_device(dev),
            ),
            false,
        ),
        Inputs::Hidden { from, states } => {
            let len = rows.iter().map(|&r| states[r].size()[0]).max().unwrap_or(1);
            let hidden = model.config.hidden_size as i64;
            let padded: Vec<Tensor> = rows
                .iter()
                .map(|&r| states[r].constant_pad_nd([0, 0, 0, len - states[r].size()[0]]))
                .collect();
            let x = Tensor::stack(&padded, 0);
            let mask: Vec<i64> = rows
                .iter()
                .flat_map(|&r| {
                    let n = states[r].size()[0];
                    (0..len).map(move |t| (t < n) as i64)
                })
                .collect();
            let mask = Tensor::from_slice(&mask)
                .view([rows.len() as i64, len])
                .to_device(dev);
            let h =
                model
                    .encoder
                    .run_layers(&x, &mask, *from..model.config.num_hidden_layers, false);
            let h = model.encoder.final_norm.forward(&h);
            debug_assert_eq!(h.size()[2], hidden);
            head.forward(&crate::model::molformer::masked_mean(&h, &mask), false)
        }
    };
    Ok(pred.squeeze_dim(-1))
}

/// A parameter-shaped vector (one tensor per selected parameter).
pub type ParamVec = Vec<Tensor>;

fn dot(a: &[Tensor], b: &[Tensor]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x * y).sum(Kind::Double).double_value(&[]))
        .sum()
}

fn norm(a: &[Tensor]) -> f64 {
    dot(a, a).sqrt()
}

/// Gradient of the mean loss over `rows` (processed in chunks of `chunk`, weighted by size).
pub fn gradient(
    model: &Model,
    params: &[(String, Tensor)],
    ex: &Examples,
    rows: &[usize],
    chunk: usize,
) -> Result<ParamVec> {
    let ts: Vec<&Tensor> = params.iter().map(|(_, t)| t).collect();
    let mut acc: ParamVec = ts.iter().map(|t| t.zeros_like()).collect();
    for c in rows.chunks(chunk.max(1)) {
        let l = loss(model, ex, c)? * (c.len() as f64 / rows.len() as f64);
        let g = Tensor::run_backward(&[l], &ts, false, false);
        for (a, g) in acc.iter_mut().zip(g) {
            *a += g;
        }
    }
    Ok(acc)
}

/// Gradient of the model's output (standardised units) on example `row` of `ex`: how its
/// prediction moves with the parameters.
pub fn output_gradient(
    model: &Model,
    params: &[(String, Tensor)],
    ex: &Examples,
    row: usize,
) -> Result<ParamVec> {
    let ts: Vec<&Tensor> = params.iter().map(|(_, t)| t).collect();
    let out = outputs(model, ex, &[row])?.sum(Kind::Float);
    Ok(Tensor::run_backward(&[out], &ts, false, false))
}

/// Hessian-vector product H·v of the mean loss over `rows`, by double back-propagation.
pub fn hvp(
    model: &Model,
    params: &[(String, Tensor)],
    ex: &Examples,
    rows: &[usize],
    v: &[Tensor],
) -> Result<ParamVec> {
    let ts: Vec<&Tensor> = params.iter().map(|(_, t)| t).collect();
    let l = loss(model, ex, rows)?;
    let g = Tensor::run_backward(&[l], &ts, true, true);
    let gv = g
        .iter()
        .zip(v)
        .map(|(g, v)| (g * v).sum(Kind::Float))
        .fold(Tensor::zeros([], (Kind::Float, model.device())), |a, b| {
            a + b
        });
    Ok(Tensor::run_backward(&[gv], &ts, false, false))
}

/// LiSSA settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LissaConfig {
    /// Recursion steps per repeat.
    pub depth: usize,
    /// Independent repeats, averaged.
    pub repeats: usize,
    /// Damping d: LiSSA solves (H + scale·d·I)⁻¹ v.
    pub damping: f64,
    /// Scale s (must exceed half the largest Hessian eigenvalue for convergence); 0 = 1.5 × the
    /// largest eigenvalue, estimated by power iteration.
    pub scale: f64,
    /// Training rows per Hessian-vector product (0 = all rows).
    pub batch_size: usize,
    /// Seed of the mini-batch draws.
    pub seed: u64,
}

impl Default for LissaConfig {
    fn default() -> Self {
        LissaConfig {
            depth: 100,
            repeats: 1,
            damping: 0.05,
            scale: 0.0,
            batch_size: 32,
            seed: 0,
        }
    }
}

impl LissaConfig {
    /// The ridge λ = scale · damping that both solvers add to H (for a configured scale).
    pub fn lambda(&self) -> f64 {
        self.scale * self.damping
    }
}

/// An inverse-HVP estimate with its diagnostics.
#[derive(Debug)]
pub struct InverseHvp {
    /// H⁻¹ v.
    pub value: ParamVec,
    /// ‖h‖ after each recursion step (LiSSA) or the residual norm per iteration (CG).
    pub norm_history: Vec<f64>,
    /// Whether the recursion settled (mean ‖h‖ over the last 10 % of steps within 5 % of the
    /// 10 % before) or CG reached its tolerance.
    pub converged: bool,
    /// The LiSSA scale used (the configured one, or 1.5 × the estimated largest eigenvalue).
    pub scale: f64,
}

/// Largest Hessian eigenvalue (by magnitude) of the loss over `rows`, by `iters` steps of
/// power iteration with Hessian-vector products.
pub fn largest_eigenvalue(
    model: &Model,
    params: &[(String, Tensor)],
    ex: &Examples,
    rows: &[usize],
    iters: usize,
) -> Result<f64> {
    let mut v: ParamVec = params.iter().map(|(_, t)| t.randn_like()).collect();
    let mut lambda = 0.0;
    for _ in 0..iters.max(1) {
        let n = norm(&v).max(1e-30);
        let u: ParamVec = v.iter().map(|t| t / n).collect();
        let hu = hvp(model, params, ex, rows, &u)?;
        lambda = dot(&u, &hu);
        v = hu;
    }
    if !lambda.is_finite() {
        return Err(Error::Training(format!(
            "Hessian eigenvalue estimate is {lambda}"
        )));
    }
    Ok(lambda.abs())
}

/// LiSSA: `h ← v + (1 − d)·h − H·h / s`, repeated `depth` times with a fresh mini-batch per
/// step; the estimate is `h / s`, averaged over repeats. Fails (never returns NaN/inf) when
/// the recursion blows up, naming the settings to change.
pub fn lissa(
    model: &Model,
    params: &[(String, Tensor)],
    train: &Examples,
    v: &[Tensor],
    cfg: &LissaConfig,
) -> Result<InverseHvp> {
    if cfg.depth == 0 || cfg.repeats == 0 || cfg.scale < 0.0 || !(0.0..1.0).contains(&cfg.damping) {
        return Err(Error::param(
            "lissa",
            "depth and repeats must be positive, scale ≥ 0 (0 = automatic), damping in [0, 1)",
        ));
    }
    let mut rng = SplitMix64::derive(cfg.seed, "lissa");
    let n = train.len();
    let scale = if cfg.scale > 0.0 {
        cfg.scale
    } else {
        tch::manual_seed(cfg.seed as i64);
        let sample: Vec<usize> = (0..n.min(64))
            .map(|_| rng.below(n as u64) as usize)
            .collect();
        1.5 * largest_eigenvalue(model, params, train, &sample, 10)?.max(1e-6)
    };
    let mut sum: ParamVec = v.iter().map(|t| t.zeros_like()).collect();
    let mut history = Vec::new();
    let v_norm = norm(v).max(1e-30);
    for _ in 0..cfg.repeats {
        let mut h: ParamVec = v.iter().map(|t| t.copy()).collect();
        for step in 0..cfg.depth {
            let rows: Vec<usize> = if cfg.batch_size == 0 || cfg.batch_size >= n {
                (0..n).collect()
            } else {
                (0..cfg.batch_size)
                    .map(|_| rng.below(n as u64) as usize)
                    .collect()
            };
            let hv = hvp(model, params, train, &rows, &h)?;
            h = v
                .iter()
                .zip(&h)
                .zip(&hv)
                .map(|((v, h), hv)| v + h * (1.0 - cfg.damping) - hv / scale)
                .collect();
            let hn = norm(&h);
            history.push(hn);
            // Converging iterates obey ‖h‖ ≤ ‖v‖ / d when H is positive semi-definite.
            if !hn.is_finite() || hn > 10.0 * v_norm / cfg.damping.max(1e-6) {
                return Err(Error::Training(format!(
                    "LiSSA diverged at step {} (‖h‖ = {hn:.3e}, ‖v‖ = {v_norm:.3e}); increase --lissa-scale (now {scale:.3}) or --lissa-damping (now {})",
                    step + 1,
                    cfg.damping
                )));
            }
        }
        for (s, h) in sum.iter_mut().zip(&h) {
            *s += h / scale;
        }
    }
    let value: ParamVec = sum.into_iter().map(|s| s / cfg.repeats as f64).collect();
    // Settled when the mean ‖h‖ of the last tenth of the steps is within 5 % of the mean of
    // the tenth before it (mini-batch Hessians make single steps noisy).
    let w = (history.len() / 10).max(1);
    let mean = |xs: &[f64]| xs.iter().sum::<f64>() / xs.len().max(1) as f64;
    let last = mean(&history[history.len() - w..]);
    let before = mean(&history[history.len().saturating_sub(2 * w)..history.len() - w]);
    let converged = history.len() >= 2 * w && (last - before).abs() <= 0.05 * last;
    Ok(InverseHvp {
        value,
        converged,
        norm_history: history,
        scale,
    })
}

/// Conjugate gradient on (H + λI) x = v over all training rows, to relative residual `tol`.
/// H must be positive definite after the ridge; a non-positive curvature is an error.
pub fn conjugate_gradient(
    model: &Model,
    params: &[(String, Tensor)],
    train: &Examples,
    v: &[Tensor],
    lambda: f64,
    tol: f64,
    max_iter: usize,
) -> Result<InverseHvp> {
    let all: Vec<usize> = (0..train.len()).collect();
    let apply = |x: &[Tensor]| -> Result<ParamVec> {
        let hx = hvp(model, params, train, &all, x)?;
        Ok(hx.iter().zip(x).map(|(h, x)| h + x * lambda).collect())
    };
    let mut x: ParamVec = v.iter().map(|t| t.zeros_like()).collect();
    let mut r: ParamVec = v.iter().map(|t| t.copy()).collect();
    let mut p: ParamVec = r.iter().map(|t| t.copy()).collect();
    let mut rr = dot(&r, &r);
    let v_norm = rr.sqrt().max(1e-30);
    let mut history = vec![rr.sqrt()];
    for _ in 0..max_iter {
        if rr.sqrt() <= tol * v_norm {
            break;
        }
        let ap = apply(&p)?;
        let pap = dot(&p, &ap);
        if pap <= 0.0 || !pap.is_finite() {
            return Err(Error::Training(format!(
                "conjugate gradient met non-positive curvature ({pap:.3e}); raise the damping"
            )));
        }
        let alpha = rr / pap;
        for i in 0..x.len() {
            x[i] = &x[i] + &p[i] * alpha;
            r[i] = &r[i] - &ap[i] * alpha;
        }
        let rr_new = dot(&r, &r);
        for i in 0..p.len() {
            p[i] = &r[i] + &p[i] * (rr_new / rr);
        }
        rr = rr_new;
        history.push(rr.sqrt());
    }
    Ok(InverseHvp {
        value: x,
        converged: rr.sqrt() <= tol * v_norm,
        norm_history: history,
        scale: 0.0,
    })
}

/// Koh & Liang influence I(z) = −s·∇ℓ(z) of each example, where `s_test` = H⁻¹∇L_val.
/// Negative values help (see the module documentation).
pub fn influence(
    model: &Model,
    params: &[(String, Tensor)],
    s_test: &[Tensor],
    ex: &Examples,
) -> Result<Vec<f64>> {
    (0..ex.len())
        .map(|i| {
            let g = gradient(model, params, ex, &[i], 1)?;
            let v = -dot(s_test, &g);
            if v.is_finite() {
                Ok(v)
            } else {
                Err(Error::Training(format!("influence of example {i} is {v}")))
            }
        })
        .collect()
}

pub use crate::metrics::spearman;
