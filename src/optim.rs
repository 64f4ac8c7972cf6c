//! Adam and AdamW (Kingma & Ba 2015; Loshchilov & Hutter 2019) over named tensors, with
//! state that is saved in checkpoints so an interrupted job resumes exactly, gradient-norm
//! clipping, and learning-rate schedules.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

/// Optimiser settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AdamConfig {
    /// First-moment decay (0.9).
    pub beta1: f64,
    /// Second-moment decay (0.999).
    pub beta2: f64,
    /// Denominator epsilon (1e-8).
    pub eps: f64,
    /// Weight decay (0 = plain Adam).
    pub weight_decay: f64,
    /// Decoupled weight decay (AdamW) instead of L2 in the gradient.
    pub decoupled: bool,
}

impl AdamConfig {
    /// Adam with the usual constants.
    pub fn adam() -> Self {
        AdamConfig {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            decoupled: false,
        }
    }

    /// AdamW with decoupled `weight_decay`.
    pub fn adamw(weight_decay: f64) -> Self {
        AdamConfig {
            weight_decay,
            decoupled: true,
            ..Self::adam()
        }
    }
}

/// Adam over the tensors given at construction; tensors without a gradient are skipped.
#[derive(Debug)]
pub struct Adam {
    cfg: AdamConfig,
    params: Vec<(String, Tensor)>,
    m: Vec<Tensor>,
    v: Vec<Tensor>,
    steps: i64,
}

impl Adam {
    /// An optimiser over `params` (name, tensor); only tensors that require grad are kept.
    pub fn new(params: Vec<(String, Tensor)>, cfg: AdamConfig) -> Self {
        let params: Vec<_> = params
            .into_iter()
            .filter(|(_, t)| t.requires_grad())
            .collect();
        let m = params.iter().map(|(_, t)| t.zeros_like()).collect();
        let v = params.iter().map(|(_, t)| t.zeros_like()).collect();
        Adam {
            cfg,
            params,
            m,
            v,
            steps: 0,
        }
    }

    /// Number of steps taken.
    pub fn steps(&self) -> i64 {
        self.steps
    }

    /// Number of trainable elements.
    pub fn num_trainable(&self) -> usize {
        self.params.iter().map(|(_, t)| t.numel()).sum()
    }

    /// Clears gradients.
    pub fn zero_grad(&mut self) {
        for (_, p) in &mut self.params {
            let mut g = p.grad();
            if g.defined() {
                let _ = g.detach_();
                let _ = g.zero_();
            }
        }
    }

    /// The global L2 norm of the gradients; when `max_norm` is given and the norm exceeds it,
    /// gradients are scaled down to `max_norm`. Returns the norm before clipping.
    pub fn clip_grad_norm(&mut self, max_norm: Option<f64>) -> f64 {
        let grads: Vec<Tensor> = self
            .params
            .iter()
            .map(|(_, p)| p.grad())
            .filter(|g| g.defined())
            .collect();
        if grads.is_empty() {
            return 0.0;
        }
        let sq: Vec<Tensor> = grads.iter().map(|g| g.square().sum(Kind::Float)).collect();
        let total = Tensor::stack(&sq, 0)
            .sum(Kind::Float)
            .sqrt()
            .double_value(&[]);
        if let Some(max) = max_norm {
            if total > max && total.is_finite() {
                let scale = max / (total + 1e-6);
                tch::no_grad(|| {
                    for mut g in grads {
                        let _ = g.g_mul_scalar_(scale);
                    }
                });
            }
        }
        total
    }

    /// One update with learning rate `lr`.
    pub fn step(&mut self, lr: f64) {
        self.steps += 1;
        let c = self.cfg;
        let bc1 = 1.0 - c.beta1.powi(self.steps as i32);
        let bc2 = 1.0 - c.beta2.powi(self.steps as i32);
        tch::no_grad(|| {
            for (i, (_, p)) in self.params.iter_mut().enumerate() {
                let g = p.grad();
                if !g.defined() {
                    continue;
                }
                let g = if c.weight_decay > 0.0 && !c.decoupled {
                    &g + &*p * c.weight_decay
                } else {
                    g
                };
                if c.weight_decay > 0.0 && c.decoupled {
                    let _ = p.g_mul_scalar_(1.0 - lr * c.weight_decay);
                }
                let _ = self.m[i].lerp_(&g, 1.0 - c.beta1);
                let _ = self.v[i].g_mul_scalar_(c.beta2);
                let _ = self.v[i].addcmul_(&(&g * (1.0 - c.beta2)), &g);
                let denom = (self.v[i].sqrt() / bc2.sqrt()).g_add_scalar_(c.eps);
                let _ = p.addcdiv_(&(&self.m[i] * (-lr / bc1)), &denom);
            }
        });
    }

    /// Moments as named tensors (`m.<name>`, `v.<name>`) plus `steps`, for checkpoints.
    pub fn state(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::with_capacity(2 * self.params.len() + 1);
        for (i, (n, _)) in self.params.iter().enumerate() {
            out.push((format!("m.{n}"), self.m[i].to_device(tch::Device::Cpu)));
            out.push((format!("v.{n}"), self.v[i].to_device(tch::Device::Cpu)));
        }
        out.push(("steps".into(), Tensor::from_slice(&[self.steps])));
        out
    }

    /// Restores [`Adam::state`]; moments of tensors absent from `state` stay zero.
    pub fn load_state(&mut self, state: &HashMap<String, Tensor>) -> crate::Result<()> {
        let wrong = |name: &str, t: &Tensor, want: &Tensor| {
            crate::Error::Training(format!(
                "optimizer state {name} has shape {:?} where the parameter has {:?}",
                t.size(),
                want.size()
            ))
        };
        for (i, (n, _)) in self.params.iter().enumerate() {
            if let (Some(m), Some(v)) = (state.get(&format!("m.{n}")), state.get(&format!("v.{n}")))
            {
                for (name, t) in [("m", m), ("v", v)] {
                    if t.size() != self.m[i].size() {
                        return Err(wrong(&format!("{name}.{n}"), t, &self.m[i]));
                    }
                }
                tch::no_grad(|| {
                    self.m[i].copy_(m);
                    self.v[i].copy_(v);
                });
            }
        }
        if let Some(s) = state.get("steps") {
            if s.numel() != 1 {
                return Err(crate::Error::Training(format!(
                    "optimizer state steps has shape {:?}",
                    s.size()
                )));
            }
            let at: &[i64] = if s.dim() == 0 { &[] } else { &[0] };
            self.steps = s.f_int64_value(at)?;
        }
        Ok(())
    }
}

/// Learning rate at `step` of `total`: linear warm-up over `warmup` steps, then linear decay
/// to 10 % of `peak` (when `decay`), or constant.
pub fn schedule(peak: f64, step: u64, total: u64, warmup: u64, decay: bool) -> f64 {
    if warmup > 0 && step < warmup {
        return peak * (step + 1) as f64 / warmup as f64;
    }
    if !decay || total <= warmup {
        return peak;
    }
    let frac = (step - warmup) as f64 / (total - warmup).max(1) as f64;
    peak * (1.0 - 0.9 * frac.min(1.0))
}
