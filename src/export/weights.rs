//! The weights an export reads: float32 tensors by Hugging Face name, from a model folder's
//! `model.safetensors` (no libtorch needed) or from a tch [`Model`](crate::model::Model) in
//! memory, with any LoRA/IA3 adapters folded into the base weights.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use safetensors::{Dtype, SafeTensors};

use crate::error::{Error, Result};

/// A dense float32 tensor, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor32 {
    /// Shape.
    pub shape: Vec<usize>,
    /// Elements, row-major.
    pub data: Vec<f32>,
}

impl Tensor32 {
    /// The transpose of a matrix `[r, c]` → `[c, r]`.
    pub fn transposed(&self) -> Tensor32 {
        let (r, c) = (self.shape[0], self.shape[1]);
        let mut data = vec![0f32; r * c];
        for i in 0..r {
            for j in 0..c {
                data[j * r + i] = self.data[i * c + j];
            }
        }
        Tensor32 {
            shape: vec![c, r],
            data,
        }
    }
}

/// Named tensors being consumed by an export: every [`Weights::take`] removes one, and
/// [`Weights::finish`] rejects tensors nobody used (so nothing, e.g. an unmerged adapter, is
/// silently dropped).
#[derive(Debug, Clone)]
pub struct Weights {
    tensors: BTreeMap<String, Tensor32>,
    source: PathBuf,
}

impl Weights {
    /// Weights from `tensors`; `source` names them in error messages.
    pub fn new(tensors: BTreeMap<String, Tensor32>, source: impl Into<PathBuf>) -> Self {
        Weights {
            tensors,
            source: source.into(),
        }
    }

    /// Reads a `model.safetensors` (float32, float16 or bfloat16), prefixing bare encoder
    /// names with `molformer.` as Hugging Face base-model checkpoints omit it.
    pub fn from_safetensors(path: &Path) -> Result<Weights> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let st = SafeTensors::deserialize(&bytes).map_err(|e| Error::model(path, e.to_string()))?;
        let list = st.tensors();
        let bare = !list.iter().any(|(n, _)| n.starts_with("molformer."));
        let mut tensors = BTreeMap::new();
        for (name, view) in list {
            let raw = view.data();
            let data: Vec<f32> = match view.dtype() {
                Dtype::F32 => raw
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect(),
                Dtype::F16 => raw
                    .chunks_exact(2)
                    .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
                    .collect(),
                Dtype::BF16 => raw
                    .chunks_exact(2)
                    .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32())
                    .collect(),
                Dtype::F64 => raw
                    .chunks_exact(8)
                    .map(|b| {
                        f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f32
                    })
                    .collect(),
                other => {
                    return Err(Error::model(
                        path,
                        format!("{name} has dtype {other:?}; export reads float tensors"),
                    ))
                }
            };
            let name = if bare
                && (name.starts_with("embeddings.")
                    || name.starts_with("encoder.")
                    || name == "LayerNorm.weight"
                    || name == "LayerNorm.bias")
            {
                format!("molformer.{name}")
            } else {
                name
            };
            tensors.insert(
                name,
                Tensor32 {
                    shape: view.shape().to_vec(),
                    data,
                },
            );
        }
        Ok(Weights::new(tensors, path))
    }

    /// Whether a tensor called `name` is present.
    pub fn contains(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }

    /// The shape of `name`, if present.
    pub fn shape(&self, name: &str) -> Option<&[usize]> {
        self.tensors.get(name).map(|t| t.shape.as_slice())
    }

    /// Removes and returns `name`, which must have shape `shape`.
    pub fn take(&mut self, name: &str, shape: &[usize]) -> Result<Tensor32> {
        let t = self.tensors.remove(name).ok_or_else(|| {
            Error::model(
                &self.source,
                format!("{name} is missing (the config needs it)"),
            )
        })?;
        if t.shape != shape {
            return Err(Error::model(
                &self.source,
                format!("{name} has shape {:?}, the config needs {shape:?}", t.shape),
            ));
        }
        Ok(t)
    }

    /// Puts `t` back under `name` (replacing any tensor of that name).
    pub fn put(&mut self, name: &str, t: Tensor32) {
        self.tensors.insert(name.to_string(), t);
    }

    /// Checks that every tensor was used, except the masked-LM head and rotary caches that
    /// the prediction graph does not need.
    pub fn finish(self) -> Result<()> {
        let unused: Vec<&String> = self
            .tensors
            .keys()
            .filter(|k| !k.starts_with("lm_head.") && !k.ends_with("inv_freq"))
            .collect();
        match unused.first() {
            None => Ok(()),
            Some(first) => Err(Error::model(
                &self.source,
                format!(
                    "{} tensors are not part of MoLFormer's prediction graph, e.g. {first} \
                     (adapters must be merged into the base weights before export)",
                    unused.len()
                ),
            )),
        }
    }
}

#[cfg(feature = "train")]
mod from_tch {
    use std::collections::BTreeMap;

    use tch::{Kind, Tensor};

    use super::{Tensor32, Weights};
    use crate::error::Result;
    use crate::model::molformer::{LayerNorm, Linear};
    use crate::model::Model;

    fn to32(t: &Tensor) -> Result<Tensor32> {
        let t = t
            .detach()
            .to_device(tch::Device::Cpu)
            .to_kind(Kind::Float)
            .contiguous();
        let shape = t.size().iter().map(|&d| d as usize).collect();
        let data = Vec::<f32>::try_from(t.view([-1]))?;
        Ok(Tensor32 { shape, data })
    }

    struct Collect(BTreeMap<String, Tensor32>);

    impl Collect {
        fn put(&mut self, name: String, t: &Tensor) -> Result<()> {
            self.0.insert(name, to32(t)?);
            Ok(())
        }

        /// A linear layer with its LoRA update folded in, rows scaled by `row_scale` (IA3 on
        /// the layer's output) and columns by `col_scale` (IA3 on its input).
        fn linear(
            &mut self,
            p: &str,
            l: &Linear,
            row_scale: Option<&Tensor>,
            col_scale: Option<&Tensor>,
        ) -> Result<()> {
            let mut w = l.weight.detach().to_kind(Kind::Float);
            let mut b = l.bias.as_ref().map(|b| b.detach().to_kind(Kind::Float));
            if let Some(lora) = &l.lora {
                w += lora.b.detach().matmul(&lora.a.detach()) * lora.scale;
            }
            if let Some(s) = row_scale {
                let s = s.detach().to_kind(Kind::Float);
                w *= s.unsqueeze(1);
                b = b.map(|b| b * &s);
            }
            if let Some(s) = col_scale {
                w *= s.detach().to_kind(Kind::Float).unsqueeze(0);
            }
            self.put(format!("{p}.weight"), &w)?;
            if let Some(b) = b {
                self.put(format!("{p}.bias"), &b)?;
            }
            Ok(())
        }

        fn norm(&mut self, p: &str, n: &LayerNorm) -> Result<()> {
            self.put(format!("{p}.weight"), &n.weight)?;
            self.put(format!("{p}.bias"), &n.bias)
        }
    }

    impl Weights {
        /// The tensors of `model`'s prediction graph, with adapters merged: each LoRA update
        /// `scale · B A` is added to its weight, IA3 key/value scalings multiply the rows (and
        /// bias) of the key/value projections, and the IA3 feed-forward scaling multiplies the
        /// columns of `output.dense`. The masked-LM head is left out.
        pub fn from_model(model: &Model) -> Result<Weights> {
            let mut c = Collect(BTreeMap::new());
            let enc = &model.encoder;
            c.put(
                "molformer.embeddings.word_embeddings.weight".into(),
                &enc.word_embeddings,
            )?;
            for (i, l) in enc.layers.iter().enumerate() {
                let p = format!("molformer.encoder.layer.{i}");
                let a = &l.attention;
                c.linear(&format!("{p}.attention.self.query"), &a.query, None, None)?;
                c.linear(
                    &format!("{p}.attention.self.key"),
                    &a.key,
                    a.ia3_key.as_ref(),
                    None,
                )?;
                c.linear(
                    &format!("{p}.attention.self.value"),
                    &a.value,
                    a.ia3_value.as_ref(),
                    None,
                )?;
                c.put(
                    format!("{p}.attention.self.feature_map.weight"),
                    &a.feature_map,
                )?;
                c.linear(
                    &format!("{p}.attention.output.dense"),
                    &l.attention_out,
                    None,
                    None,
                )?;
                c.norm(
                    &format!("{p}.attention.output.LayerNorm"),
                    &l.attention_norm,
                )?;
                c.linear(
                    &format!("{p}.intermediate.dense"),
                    &l.intermediate,
                    None,
                    None,
                )?;
                c.linear(
                    &format!("{p}.output.dense"),
                    &l.output,
                    None,
                    l.ia3_ff.as_ref(),
                )?;
                c.norm(&format!("{p}.output.LayerNorm"), &l.output_norm)?;
            }
            c.norm("molformer.LayerNorm", &enc.final_norm)?;
            if let Some(h) = &model.head {
                c.linear("classifier.dense", &h.dense, None, None)?;
                c.linear("classifier.dense2", &h.dense2, None, None)?;
                c.linear("classifier.out_proj", &h.out_proj, None, None)?;
            }
            Ok(Weights::new(c.0, "the model in memory"))
        }
    }
}
