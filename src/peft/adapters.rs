//! Adapters inside a model: creating them ([`attach`], [`apply`]), counting what trains
//! ([`parameter_counts`]) and folding them into the base weights ([`merge`]).

use serde::{Deserialize, Serialize};
use tch::nn::Init;
use tch::Tensor;

use super::{Ia3Config, LoraConfig, PeftConfig};
use crate::error::{Error, Result};
use crate::model::molformer::{Block, Linear, Lora};
use crate::model::Model;
use crate::rng::SplitMix64;

/// True for the name of an adapter tensor (LoRA `lora_A`/`lora_B`, IA3 `ia3` vectors).
pub fn is_adapter(name: &str) -> bool {
    name.contains(".lora_A.") || name.contains(".lora_B.") || name.contains(".ia3.")
}

fn is_head(name: &str) -> bool {
    name.starts_with("classifier.")
}

fn is_buffer(name: &str) -> bool {
    name.ends_with("feature_map.weight")
}

fn layer_prefix(i: usize) -> String {
    format!("molformer.encoder.layer.{i}")
}

fn linear_mut<'a>(block: &'a mut Block, module: &str) -> &'a mut Linear {
    match module {
        "attention.self.query" => &mut block.attention.query,
        "attention.self.key" => &mut block.attention.key,
        "attention.self.value" => &mut block.attention.value,
        "attention.output.dense" => &mut block.attention_out,
        "intermediate.dense" => &mut block.intermediate,
        "output.dense" => &mut block.output,
        other => unreachable!("{other} is not in LINEAR_MODULES"),
    }
}

/// Creates a variable `prefix.dotted.path` (e.g. `…query.lora_A.weight`) in the model's store.
fn new_var(model: &Model, dotted: &str, shape: &[i64], init: Init) -> Tensor {
    let mut parts: Vec<&str> = dotted.split('.').collect();
    let leaf = parts.pop().expect("non-empty name");
    let path = parts
        .into_iter()
        .fold(model.vs.root(), |p, part| p.sub(part));
    path.var(leaf, shape, init)
}

/// Creates the adapters of `cfg` in `model` (in its `VarStore`, so they save and load with it)
/// and records `cfg` in `model.meta.peft`. LoRA's `A` is drawn uniformly from
/// ±1/√in (Kaiming-uniform with a = √5, as Hugging Face PEFT does) with a SplitMix64 stream
/// of `seed`, `B` is zero and IA3 vectors are one, so the model's outputs do not change.
/// Trainability is left alone (see [`apply`]).
pub fn attach(model: &mut Model, cfg: &PeftConfig, seed: u64) -> Result<()> {
    cfg.validate()?;
    if let Some(old) = &model.meta.peft {
        return Err(Error::param(
            "peft",
            format!(
                "the model already carries {} adapters; merge them first",
                old.name()
            ),
        ));
    }
    match cfg {
        PeftConfig::BitFit => {}
        PeftConfig::Lora(l) => attach_lora(model, l, seed)?,
        PeftConfig::Ia3(c) => attach_ia3(model, c),
    }
    model.meta.peft = Some(cfg.clone());
    Ok(())
}

fn attach_lora(model: &mut Model, l: &LoraConfig, seed: u64) -> Result<()> {
    let modules = l.modules()?;
    let r = l.r as i64;
    let mut created = Vec::new();
    for i in 0..model.encoder.layers.len() {
        for &module in &modules {
            let (out_dim, in_dim) = {
                let lin = linear_mut(&mut model.encoder.layers[i], module);
                let s = lin.weight.size();
                (s[0], s[1])
            };
            let base = format!("{}.{module}", layer_prefix(i));
            let a = new_var(
                model,
                &format!("{base}.lora_A.weight"),
                &[r, in_dim],
                Init::Const(0.0),
            );
            let b = new_var(
                model,
                &format!("{base}.lora_B.weight"),
                &[out_dim, r],
                Init::Const(0.0),
            );
            let bound = 1.0 / (in_dim as f64).sqrt();
            let mut rng = SplitMix64::derive(seed, &format!("{base}.lora_A"));
            let values: Vec<f32> = (0..r * in_dim)
                .map(|_| ((rng.next_f64() * 2.0 - 1.0) * bound) as f32)
                .collect();
            tch::no_grad(|| {
                let mut a = a.shallow_clone();
                a.copy_(
                    &Tensor::from_slice(&values)
                        .view([r, in_dim])
                        .to_device(a.device()),
                );
            });
            created.push((i, module, a, b));
        }
    }
    for (i, module, a, b) in created {
        linear_mut(&mut model.encoder.layers[i], module).lora = Some(Lora {
            a,
            b,
            scale: l.scale(),
            dropout: l.dropout,
        });
    }
    Ok(())
}

fn attach_ia3(model: &mut Model, c: &Ia3Config) {
    let hidden = model.config.hidden_size as i64;
    let inter = model.config.intermediate_size as i64;
    for i in 0..model.encoder.layers.len() {
        let p = layer_prefix(i);
        let ones = Init::Const(1.0);
        let key = c.key.then(|| {
            new_var(
                model,
                &format!("{p}.attention.self.key.ia3.weight"),
                &[hidden],
                ones,
            )
        });
        let value = c.value.then(|| {
            new_var(
                model,
                &format!("{p}.attention.self.value.ia3.weight"),
                &[hidden],
                ones,
            )
        });
        let ff = c.feed_forward.then(|| {
            new_var(
                model,
                &format!("{p}.output.dense.ia3.weight"),
                &[inter],
                ones,
            )
        });
        let block = &mut model.encoder.layers[i];
        block.attention.ia3_key = key;
        block.attention.ia3_value = value;
        block.ia3_ff = ff;
    }
}

/// Whether a tensor trains under `cfg`: BitFit trains every bias and the head; LoRA and IA3
/// train their adapters and the head.
pub fn trains(cfg: &PeftConfig, name: &str) -> bool {
    if is_buffer(name) {
        return false;
    }
    match cfg {
        PeftConfig::BitFit => name.ends_with(".bias") || is_head(name),
        PeftConfig::Lora(_) | PeftConfig::Ia3(_) => is_adapter(name) || is_head(name),
    }
}

/// Attaches the adapters of `cfg` (see [`attach`]) and freezes everything except what the
/// method trains; returns the parameter counts.
pub fn apply(model: &mut Model, cfg: &PeftConfig, seed: u64) -> Result<ParameterCounts> {
    attach(model, cfg, seed)?;
    let cfg = cfg.clone();
    model.set_trainable(|name| trains(&cfg, name));
    Ok(parameter_counts(model))
}

/// How many parameter elements a model has and how many train.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParameterCounts {
    /// Every parameter element, adapters included (random-feature buffers excluded).
    pub total: usize,
    /// Elements that receive gradients.
    pub trainable: usize,
    /// Elements of adapter tensors (LoRA, IA3), trainable or not.
    pub adapter: usize,
    /// Elements of the task head (`classifier.*`).
    pub head: usize,
}

impl ParameterCounts {
    /// Trainable share of all parameters, in percent.
    pub fn trainable_percent(&self) -> f64 {
        100.0 * self.trainable as f64 / self.total.max(1) as f64
    }
}

impl std::fmt::Display for ParameterCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "trainable {} of {} parameters ({:.3} %; adapters {}, head {})",
            self.trainable,
            self.total,
            self.trainable_percent(),
            self.adapter,
            self.head
        )
    }
}

/// Counts the model's parameters by role.
pub fn parameter_counts(model: &Model) -> ParameterCounts {
    let mut c = ParameterCounts {
        total: 0,
        trainable: 0,
        adapter: 0,
        head: 0,
    };
    for (name, t) in model.named_tensors() {
        if is_buffer(&name) {
            continue;
        }
        let n = t.numel();
        c.total += n;
        if t.requires_grad() {
            c.trainable += n;
        }
        if is_adapter(&name) {
            c.adapter += n;
        }
        if is_head(&name) {
            c.head += n;
        }
    }
    c
}

/// Folds the adapters into the base weights and removes them, leaving a plain model:
/// LoRA adds `scale · B A` to its layer's weight; IA3 scales the rows (and bias) of the key and
/// value projections and the columns of `output.dense`. BitFit has nothing to fold. A model
/// without adapters is left as it is.
pub fn merge(model: &mut Model) -> Result<()> {
    let Some(cfg) = model.meta.peft.take() else {
        return Ok(());
    };
    tch::no_grad(|| {
        for block in &mut model.encoder.layers {
            for module in super::LINEAR_MODULES {
                let lin = linear_mut(block, module);
                if let Some(l) = lin.lora.take() {
                    let delta = l.b.matmul(&l.a) * l.scale;
                    let _ = lin.weight.g_add_(&delta);
                }
            }
            let att = &mut block.attention;
            for (lin, s) in [
                (&mut att.key, att.ia3_key.take()),
                (&mut att.value, att.ia3_value.take()),
            ] {
                if let Some(s) = s {
                    let _ = lin.weight.g_mul_(&s.unsqueeze(1));
                    if let Some(b) = &mut lin.bias {
                        let _ = b.g_mul_(&s);
                    }
                }
            }
            if let Some(s) = block.ia3_ff.take() {
                let _ = block.output.weight.g_mul_(&s.unsqueeze(0));
            }
        }
    });
    remove_adapters(model);
    tracing::debug!("merged {} adapters into the base weights", cfg.name());
    Ok(())
}

/// Drops every adapter tensor from the model's `VarStore`.
fn remove_adapters(model: &Model) {
    let mut vars = model
        .vs
        .variables_
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let names: Vec<String> = vars
        .named_variables
        .keys()
        .filter(|n| is_adapter(n))
        .cloned()
        .collect();
    for n in names {
        if let Some(t) = vars.named_variables.remove(&n) {
            let ptr = t.data_ptr();
            vars.trainable_variables
                .retain(|v| v.tensor.data_ptr() != ptr);
        }
    }
}
