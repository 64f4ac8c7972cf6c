//! MoLFormer in tch, as `docs/molformer.md` describes it: word embeddings, rotary positions,
//! linear attention through a stored random-feature map, post-LayerNorm blocks, masked mean
//! pooling, and the masked-LM and sequence heads. Parameter names are Hugging Face's.

use tch::nn::{Init, Path};
use tch::{Kind, Tensor};

use super::config::Config;

/// A dense layer `y = x Wᵀ + b`, with an optional low-rank (LoRA) update.
#[derive(Debug)]
pub struct Linear {
    /// `[out, in]`.
    pub weight: Tensor,
    /// `[out]`.
    pub bias: Option<Tensor>,
    /// LoRA adapter: `y += (dropout(x) Aᵀ) Bᵀ · scale`.
    pub lora: Option<Lora>,
}

/// A LoRA adapter of one [`Linear`].
#[derive(Debug)]
pub struct Lora {
    /// `[r, in]`, random at start.
    pub a: Tensor,
    /// `[out, r]`, zero at start.
    pub b: Tensor,
    /// `alpha / r`.
    pub scale: f64,
    /// Dropout on the adapter's input.
    pub dropout: f64,
}

impl Linear {
    /// A layer under `p` with weight ~ N(0, std) and zero bias.
    pub fn new(p: Path, in_dim: usize, out_dim: usize, bias: bool, std: f64) -> Self {
        let weight = p.var(
            "weight",
            &[out_dim as i64, in_dim as i64],
            Init::Randn {
                mean: 0.0,
                stdev: std,
            },
        );
        let bias = bias.then(|| p.var("bias", &[out_dim as i64], Init::Const(0.0)));
        Linear {
            weight,
            bias,
            lora: None,
        }
    }

    /// Applies the layer.
    pub fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        let y = x.linear(&self.weight, self.bias.as_ref());
        match &self.lora {
            None => y,
            Some(l) => {
                y + x
                    .dropout(l.dropout, train)
                    .linear::<Tensor>(&l.a, None)
                    .linear::<Tensor>(&l.b, None)
                    * l.scale
            }
        }
    }
}

/// LayerNorm over the last dimension.
#[derive(Debug)]
pub struct LayerNorm {
    /// Scale, ones at start.
    pub weight: Tensor,
    /// Shift, zeros at start.
    pub bias: Tensor,
    eps: f64,
}

impl LayerNorm {
    /// A LayerNorm of width `dim` under `p`.
    pub fn new(p: Path, dim: usize, eps: f64) -> Self {
        LayerNorm {
            weight: p.var("weight", &[dim as i64], Init::Const(1.0)),
            bias: p.var("bias", &[dim as i64], Init::Const(0.0)),
            eps,
        }
    }

    /// Normalises `x`.
    pub fn forward(&self, x: &Tensor) -> Tensor {
        let d = self.weight.size()[0];
        x.layer_norm([d], Some(&self.weight), Some(&self.bias), self.eps, false)
    }
}

fn gelu(x: &Tensor) -> Tensor {
    x.gelu("none")
}

/// Orthogonal random features `[d, m]`: d×d Gaussian blocks orthogonalised by QR, each
/// column scaled by the norm of the matching Gaussian row, concatenated and cut to `m`.
pub fn orthogonal_random_features(d: i64, m: i64) -> Tensor {
    let mut blocks = Vec::new();
    let mut start = 0;
    while start < m {
        let take = (m - start).min(d);
        let g = Tensor::randn([d, d], (Kind::Float, tch::Device::Cpu));
        let norms = g.square().sum_dim_intlist(1, false, None::<Kind>).sqrt();
        let (q, _) = Tensor::linalg_qr(&g, "reduced");
        blocks.push(q.narrow(1, 0, take) * norms.narrow(0, 0, take).unsqueeze(0));
        start += take;
    }
    Tensor::cat(&blocks, 1)
}

/// Rotary tables `(cos, sin)` of shape `[len, d]` for positions `0..len`.
pub fn rotary_tables(len: i64, d: i64, device: tch::Device) -> (Tensor, Tensor) {
    let opts = (Kind::Float, device);
    let inv_freq = (Tensor::arange_start_step(0, d, 2, opts) / d as f64 * -(10000f64.ln())).exp();
    let t = Tensor::arange(len, opts);
    let freqs = t.outer(&inv_freq);
    let emb = Tensor::cat(&[&freqs, &freqs], -1);
    (emb.cos(), emb.sin())
}

fn rotate_half(x: &Tensor) -> Tensor {
    let half = x.size()[x.dim() - 1] / 2;
    let x1 = x.narrow(-1, 0, half);
    let x2 = x.narrow(-1, half, half);
    Tensor::cat(&[&x2.neg(), &x1], -1)
}

/// `attention.self`: projections, rotary, feature-map linear attention.
#[derive(Debug)]
pub struct SelfAttention {
    /// Query projection.
    pub query: Linear,
    /// Key projection.
    pub key: Linear,
    /// Value projection.
    pub value: Linear,
    /// Random-feature buffer `[d, m]` (not trained).
    pub feature_map: Tensor,
    /// IA3 scaling of keys `[hidden]`.
    pub ia3_key: Option<Tensor>,
    /// IA3 scaling of values `[hidden]`.
    pub ia3_value: Option<Tensor>,
    /// Draw a fresh random-feature matrix at every training forward pass, as the reference
    /// MoLFormer code does; evaluation always uses the stored `feature_map`.
    pub redraw_in_training: bool,
    heads: i64,
    eps: f64,
}

impl SelfAttention {
    fn new(p: Path, c: &Config) -> Self {
        let h = c.hidden_size;
        let std = c.initializer_range;
        let fm = (&p / "feature_map").zeros_no_train(
            "weight",
            &[c.head_dim() as i64, c.num_random_features as i64],
        );
        tch::no_grad(|| {
            let mut fm = fm.shallow_clone();
            fm.copy_(&orthogonal_random_features(
                c.head_dim() as i64,
                c.num_random_features as i64,
            ));
        });
        SelfAttention {
            query: Linear::new(&p / "query", h, h, true, std),
            key: Linear::new(&p / "key", h, h, true, std),
            value: Linear::new(&p / "value", h, h, true, std),
            feature_map: fm,
            ia3_key: None,
            ia3_value: None,
            redraw_in_training: false,
            heads: c.num_attention_heads as i64,
            eps: c.linear_attention_eps,
        }
    }

    /// `x [b, t, hidden]`, `mask [b, t]` (float 0/1), rotary tables `[t, d]` → `[b, t, hidden]`.
    pub fn forward(
        &self,
        x: &Tensor,
        mask: &Tensor,
        rot: &(Tensor, Tensor),
        train: bool,
    ) -> Tensor {
        let (b, t, hidden) = x.size3().expect("[batch, seq, hidden]");
        let d = hidden / self.heads;
        let split = |y: Tensor| y.view([b, t, self.heads, d]).transpose(1, 2);
        let mut k = self.key.forward(x, train);
        if let Some(s) = &self.ia3_key {
            k *= s;
        }
        let mut v = self.value.forward(x, train);
        if let Some(s) = &self.ia3_value {
            v *= s;
        }
        let q = split(self.query.forward(x, train));
        let (k, v) = (split(k), split(v));
        let (cos, sin) = rot;
        let q = &q * cos + rotate_half(&q) * sin;
        let k = &k * cos + rotate_half(&k) * sin;
        let drawn;
        let feature_map = if train && self.redraw_in_training {
            let (d, m) = self.feature_map.size2().expect("feature_map is [d, m]");
            drawn = orthogonal_random_features(d, m)
                .to_kind(self.feature_map.kind())
                .to_device(self.feature_map.device());
            &drawn
        } else {
            &self.feature_map
        };
        let fq = q.matmul(feature_map).relu();
        let fk = k.matmul(feature_map).relu() * mask.view([b, 1, t, 1]);
        let kv = fk.transpose(-2, -1).matmul(&v);
        let ksum = fk.sum_dim_intlist(-2, true, None::<Kind>);
        let norm = (&fq * ksum)
            .sum_dim_intlist(-1, true, None::<Kind>)
            .clamp_min(self.eps);
        let ctx = fq.matmul(&kv) / norm;
        ctx.transpose(1, 2).contiguous().view([b, t, hidden])
    }
}

/// `encoder.layer.{i}`: attention and feed-forward, each with residual and post-LayerNorm.
#[derive(Debug)]
pub struct Block {
    /// `attention.self`.
    pub attention: SelfAttention,
    /// `attention.output.dense`.
    pub attention_out: Linear,
    /// `attention.output.LayerNorm`.
    pub attention_norm: LayerNorm,
    /// `intermediate.dense`.
    pub intermediate: Linear,
    /// `output.dense`.
    pub output: Linear,
    /// `output.LayerNorm`.
    pub output_norm: LayerNorm,
    /// IA3 scaling of the feed-forward activation `[intermediate]`.
    pub ia3_ff: Option<Tensor>,
    dropout: f64,
}

impl Block {
    fn new(p: Path, c: &Config) -> Self {
        let (h, i, std, eps) = (
            c.hidden_size,
            c.intermediate_size,
            c.initializer_range,
            c.layer_norm_eps,
        );
        Block {
            attention: SelfAttention::new(&p / "attention" / "self", c),
            attention_out: Linear::new(&p / "attention" / "output" / "dense", h, h, true, std),
            attention_norm: LayerNorm::new(&p / "attention" / "output" / "LayerNorm", h, eps),
            intermediate: Linear::new(&p / "intermediate" / "dense", h, i, true, std),
            output: Linear::new(&p / "output" / "dense", i, h, true, std),
            output_norm: LayerNorm::new(&p / "output" / "LayerNorm", h, eps),
            ia3_ff: None,
            dropout: c.hidden_dropout_prob,
        }
    }

    fn forward(&self, x: &Tensor, mask: &Tensor, rot: &(Tensor, Tensor), train: bool) -> Tensor {
        let a = self.attention.forward(x, mask, rot, train);
        let a = self
            .attention_out
            .forward(&a, train)
            .dropout(self.dropout, train);
        let a = self.attention_norm.forward(&(a + x));
        let mut f = gelu(&self.intermediate.forward(&a, train));
        if let Some(s) = &self.ia3_ff {
            f *= s;
        }
        let f = self.output.forward(&f, train).dropout(self.dropout, train);
        self.output_norm.forward(&(f + a))
    }
}

/// The encoder (`molformer.*`): embeddings, blocks, final LayerNorm.
#[derive(Debug)]
pub struct Encoder {
    /// `embeddings.word_embeddings.weight` `[vocab, hidden]`.
    pub word_embeddings: Tensor,
    /// `encoder.layer.{i}`.
    pub layers: Vec<Block>,
    /// `LayerNorm`.
    pub final_norm: LayerNorm,
    embedding_dropout: f64,
    pad_id: i64,
    head_dim: i64,
}

impl Encoder {
    /// Builds the encoder under `p` (normally `root / "molformer"`).
    pub fn new(p: Path, c: &Config) -> Self {
        let word_embeddings = (&p / "embeddings" / "word_embeddings").var(
            "weight",
            &[c.vocab_size as i64, c.hidden_size as i64],
            Init::Randn {
                mean: 0.0,
                stdev: c.initializer_range,
            },
        );
        tch::no_grad(|| {
            let _ = word_embeddings.get(c.pad_token_id as i64).zero_();
        });
        let layers = (0..c.num_hidden_layers)
            .map(|i| Block::new(&p / "encoder" / "layer" / i, c))
            .collect();
        Encoder {
            word_embeddings,
            layers,
            final_norm: LayerNorm::new(&p / "LayerNorm", c.hidden_size, c.layer_norm_eps),
            embedding_dropout: c.embedding_dropout_prob,
            pad_id: c.pad_token_id as i64,
            head_dim: c.head_dim() as i64,
        }
    }

    /// Makes every attention layer draw fresh random features at each training forward pass
    /// (`true`, the reference code's behaviour) or keep its stored ones (`false`, the default).
    /// Evaluation always uses the stored features, so predictions stay reproducible.
    pub fn set_feature_redraw(&mut self, on: bool) {
        for layer in &mut self.layers {
            layer.attention.redraw_in_training = on;
        }
    }

    /// Last hidden state `[b, t, hidden]` of `ids [b, t]` (int64) with `mask [b, t]` (0/1).
    pub fn forward(&self, ids: &Tensor, mask: &Tensor, train: bool) -> Tensor {
        let x = self.embed_tokens(ids, train);
        let x = self.run_layers(&x, mask, 0..self.layers.len(), train);
        self.final_norm.forward(&x)
    }

    /// Word embeddings (with embedding dropout in training) `[b, t, hidden]`.
    pub fn embed_tokens(&self, ids: &Tensor, train: bool) -> Tensor {
        Tensor::embedding(&self.word_embeddings, ids, self.pad_id, false, false)
            .dropout(self.embedding_dropout, train)
    }

    /// Runs the blocks `layers` (a range of layer indices) over hidden states `x [b, t, hidden]`;
    /// the final LayerNorm is not applied. Lets callers cache the output of a frozen prefix.
    pub fn run_layers(
        &self,
        x: &Tensor,
        mask: &Tensor,
        layers: std::ops::Range<usize>,
        train: bool,
    ) -> Tensor {
        let mask = mask.to_kind(Kind::Float);
        let t = x.size()[1];
        let rot = rotary_tables(t, self.head_dim, x.device());
        let mut x = x.shallow_clone();
        for layer in &self.layers[layers] {
            x = layer.forward(&x, &mask, &rot, train);
        }
        x
    }
}

/// Mean of `hidden [b, t, h]` over positions where `mask [b, t]` is 1.
pub fn masked_mean(hidden: &Tensor, mask: &Tensor) -> Tensor {
    let m = mask.to_kind(Kind::Float).unsqueeze(-1);
    let sum = (hidden * &m).sum_dim_intlist(1, false, None::<Kind>);
    sum / m.sum_dim_intlist(1, false, None::<Kind>).clamp_min(1e-9)
}

/// `lm_head`: dense → gelu → LayerNorm → decoder tied to the word embeddings.
#[derive(Debug)]
pub struct LmHead {
    /// `transform.dense`.
    pub dense: Linear,
    /// `transform.LayerNorm`.
    pub norm: LayerNorm,
}

impl LmHead {
    /// Builds the head under `p` (normally `root / "lm_head"`).
    pub fn new(p: Path, c: &Config) -> Self {
        LmHead {
            dense: Linear::new(
                &p / "transform" / "dense",
                c.hidden_size,
                c.hidden_size,
                true,
                c.initializer_range,
            ),
            norm: LayerNorm::new(
                &p / "transform" / "LayerNorm",
                c.hidden_size,
                c.layer_norm_eps,
            ),
        }
    }

    /// Vocabulary logits `[n, vocab]` of hidden states `[n, hidden]`.
    pub fn forward(&self, hidden: &Tensor, word_embeddings: &Tensor, train: bool) -> Tensor {
        let h = self.norm.forward(&gelu(&self.dense.forward(hidden, train)));
        h.matmul(&word_embeddings.tr())
    }
}

/// `classifier`: two gelu layers with skip connections over the pooled state, then `out_proj`.
#[derive(Debug)]
pub struct SequenceHead {
    /// `dense`.
    pub dense: Linear,
    /// `dense2`.
    pub dense2: Linear,
    /// `out_proj`.
    pub out_proj: Linear,
    dropout: f64,
    skip: bool,
}

impl SequenceHead {
    /// Builds the head under `p` (normally `root / "classifier"`) with `num_labels` outputs.
    pub fn new(p: Path, c: &Config, num_labels: usize) -> Self {
        let (h, std) = (c.hidden_size, c.initializer_range);
        SequenceHead {
            dense: Linear::new(&p / "dense", h, h, true, std),
            dense2: Linear::new(&p / "dense2", h, h, true, std),
            out_proj: Linear::new(&p / "out_proj", h, num_labels, true, std),
            dropout: c.classifier_dropout(),
            skip: c.classifier_skip_connection,
        }
    }

    /// Outputs `[b, num_labels]` of pooled states `[b, hidden]`.
    pub fn forward(&self, pooled: &Tensor, train: bool) -> Tensor {
        let h = gelu(
            &self
                .dense
                .forward(pooled, train)
                .dropout(self.dropout, train),
        );
        let r = if self.skip { h + pooled } else { h };
        let h2 = gelu(&self.dense2.forward(&r, train).dropout(self.dropout, train));
        let h2 = if self.skip { h2 + &r } else { h2 };
        self.out_proj.forward(&h2, train)
    }
}
