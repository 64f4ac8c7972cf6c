//! MoLFormer's prediction graph in ONNX (opset 17), mirroring the tch forward pass of
//! [`crate::model::molformer`] in eval mode (no dropout): embeddings, rotary positions
//! computed in-graph from the sequence length, random-feature linear attention, post-LayerNorm
//! blocks with exact (erf) gelu, masked mean pooling and the sequence head, then the label
//! standardisation undone (regression) or a sigmoid (classification).
//!
//! Each block computes its queries, keys and values with one matrix product whose weight also
//! holds the column permutation of rotary's `rotate_half` (so no gather runs per token), and
//! with [`Quantize::Int8`] the encoder's linear layers run as int8 `DynamicQuantizeMatMul`.

use onnx_protobuf::tensor_proto::DataType;

use super::graph::{Attr, Dim, Graph};
use super::quantize::{self, Quantize};
use super::weights::Weights;
use crate::bundle::io;
use crate::error::{Error, Result};
use crate::model::{Config, ModelMeta, Task};

/// Graph-building state: the graph, the weights being consumed and shared constants.
struct Builder<'a> {
    g: &'a mut Graph,
    w: &'a mut Weights,
    c: &'a Config,
    one: String,
    sqrt2: String,
    half: String,
    /// The column each column of `rotate_half` reads (halves swapped within each head).
    swap: Vec<usize>,
    quantize: Quantize,
    /// int64 `[batch, sequence, 5·hidden]`: the fused projection's 3-D shape.
    qkv_shape: String,
}

impl Builder<'_> {
    /// `x Wᵀ + b` for the Hugging Face linear layer `p` (`[out, in]` weight).
    fn linear(&mut self, x: &str, p: &str, din: usize, dout: usize) -> Result<String> {
        let w = self
            .w
            .take(&format!("{p}.weight"), &[dout, din])?
            .transposed();
        let b = self.w.take(&format!("{p}.bias"), &[dout])?;
        Ok(self.dense(x, p, &w.data, &b.data, din, dout))
    }

    /// `x W + b` for `W` `[din, dout]` (row-major): MatMul and Add, or, for the encoder's
    /// layers of an int8 export, one `DynamicQuantizeMatMul`.
    fn dense(&mut self, x: &str, p: &str, w: &[f32], b: &[f32], din: usize, dout: usize) -> String {
        let bn = self.g.init_f32(&format!("{p}.bias"), &[dout], b);
        if self.quantize == Quantize::Int8 && p.starts_with("molformer.encoder.") {
            let q = quantize::per_column(w, din, dout);
            let wn = self
                .g
                .init_i8(&format!("{p}.weight_q"), &[din, dout], &q.values);
            let sn = self
                .g
                .init_f32(&format!("{p}.weight_scale"), &[dout], &q.scales);
            return self
                .g
                .node(
                    quantize::DOMAIN,
                    "DynamicQuantizeMatMul",
                    &[p],
                    &[x, &wn, &sn, "", &bn],
                    &[],
                )
                .remove(0);
        }
        let wn = self.g.init_f32(&format!("{p}.weight_t"), &[din, dout], w);
        let y = self.g.op("MatMul", &format!("{p}.mm"), &[x, &wn], &[]);
        self.g.op("Add", p, &[&y, &bn], &[])
    }

    /// Queries and keys, their `rotate_half` partners, and values of the attention `a` from
    /// one product `x [Wq | Wk | Wq·S | Wk·S | Wv]`, where `S` permutes the columns as
    /// `rotate_half` does (its sign is folded into `sin`). Returns `[q|k, rotate_half(q|k),
    /// v]` on `[batch, sequence, ·]` (unsigned halves).
    fn qkv(&mut self, x: &str, a: &str) -> Result<Vec<String>> {
        let h = self.c.hidden_size;
        let width = 5 * h;
        let mut mats = Vec::new();
        for which in ["query", "key", "value"] {
            let p = format!("{a}.{which}");
            let wt = self.w.take(&format!("{p}.weight"), &[h, h])?.transposed();
            let bias = self.w.take(&format!("{p}.bias"), &[h])?;
            mats.push((wt, bias));
        }
        if self.quantize == Quantize::Float16 {
            return self.qkv_gathered(x, a, &mats);
        }
        let mut w = vec![0f32; h * width];
        let mut b = Vec::with_capacity(width);
        for (block, (m, swapped)) in [(0, false), (1, false), (0, true), (1, true), (2, false)]
            .into_iter()
            .enumerate()
        {
            let (wt, bias) = &mats[m];
            let col = block * h;
            for j in 0..h {
                let src = if swapped { self.swap[j] } else { j };
                for i in 0..h {
                    w[i * width + col + j] = wt.data[i * h + src];
                }
                b.push(bias.data[src]);
            }
        }
        let y = self.dense(x, &format!("{a}.qkv"), &w, &b, h, width);
        self.split_qkv(&y, a)
    }

    /// [`Builder::qkv`] for float16 storage: only `[Wq | Wk | Wv]` is stored, and the fused
    /// weight's rotate_half columns are gathered from it in the graph (ONNX Runtime folds the
    /// gather when it loads the graph), so the file holds 3·hidden² values per block, not 5.
    fn qkv_gathered(
        &mut self,
        x: &str,
        a: &str,
        mats: &[(super::weights::Tensor32, super::weights::Tensor32)],
    ) -> Result<Vec<String>> {
        let h = self.c.hidden_size;
        let mut w3 = vec![0f32; h * 3 * h];
        let mut b3 = Vec::with_capacity(3 * h);
        for (m, (wt, bias)) in mats.iter().enumerate() {
            for i in 0..h {
                w3[i * 3 * h + m * h..i * 3 * h + (m + 1) * h]
                    .copy_from_slice(&wt.data[i * h..(i + 1) * h]);
            }
            b3.extend_from_slice(&bias.data);
        }
        let swap = &self.swap;
        let columns: Vec<i64> = [(0, false), (1, false), (0, true), (1, true), (2, false)]
            .into_iter()
            .flat_map(|(m, swapped)| {
                (0..h).map(move |j| (m * h + if swapped { swap[j] } else { j }) as i64)
            })
            .collect();
        let wn = self
            .g
            .init_f32(&format!("{a}.qkv.weight3"), &[h, 3 * h], &w3);
        let bn = self.g.init_f32(&format!("{a}.qkv.bias3"), &[3 * h], &b3);
        let cols = self
            .g
            .init_i64(&format!("{a}.qkv.columns"), &[5 * h], &columns);
        let w = self.g.op(
            "Gather",
            &format!("{a}.qkv.weight_t"),
            &[&wn, &cols],
            &[("axis", Attr::Int(1))],
        );
        let b = self.g.op(
            "Gather",
            &format!("{a}.qkv.bias"),
            &[&bn, &cols],
            &[("axis", Attr::Int(0))],
        );
        let y = self.g.op("MatMul", &format!("{a}.qkv.mm"), &[x, &w], &[]);
        let y = self.g.op("Add", &format!("{a}.qkv"), &[&y, &b], &[]);
        self.split_qkv(&y, a)
    }

    /// The fused projection `y` `[b·t, 5·hidden]` split into `[q|k, rotate_half(q|k), v]` on
    /// `[batch, sequence, ·]`.
    fn split_qkv(&mut self, y: &str, a: &str) -> Result<Vec<String>> {
        let h = self.c.hidden_size;
        let y = self.g.op(
            "Reshape",
            &format!("{a}.qkv_bt"),
            &[y, &self.qkv_shape],
            &[],
        );
        let sizes = self.g.ints(
            &format!("{a}.qkv_sizes"),
            &[2 * h as i64, 2 * h as i64, h as i64],
        );
        let names = ["query_key", "query_key.swap", "value"].map(|n| format!("{a}.{n}"));
        let hints: Vec<&str> = names.iter().map(String::as_str).collect();
        Ok(self.g.node(
            "",
            "Split",
            &hints,
            &[&y, &sizes],
            &[("axis", Attr::Int(2))],
        ))
    }

    fn layer_norm(&mut self, x: &str, p: &str) -> Result<String> {
        let h = self.c.hidden_size;
        let s = self.w.take(&format!("{p}.weight"), &[h])?;
        let b = self.w.take(&format!("{p}.bias"), &[h])?;
        let sn = self.g.init_f32(&format!("{p}.weight"), &[h], &s.data);
        let bn = self.g.init_f32(&format!("{p}.bias"), &[h], &b.data);
        Ok(self.g.op(
            "LayerNormalization",
            p,
            &[x, &sn, &bn],
            &[
                ("axis", Attr::Int(-1)),
                ("epsilon", Attr::Float(self.c.layer_norm_eps as f32)),
            ],
        ))
    }

    /// Exact gelu `x · ½ · (1 + erf(x / √2))` (the pattern ONNX Runtime fuses into Gelu).
    fn gelu(&mut self, x: &str, p: &str) -> String {
        let (one, sqrt2, half) = (self.one.clone(), self.sqrt2.clone(), self.half.clone());
        let d = self.g.op("Div", &format!("{p}.div"), &[x, &sqrt2], &[]);
        let e = self.g.op("Erf", &format!("{p}.erf"), &[&d], &[]);
        let a = self.g.op("Add", &format!("{p}.add"), &[&e, &one], &[]);
        let m = self.g.op("Mul", &format!("{p}.mul"), &[x, &a], &[]);
        self.g.op("Mul", p, &[&m, &half], &[])
    }

    /// One encoder block `molformer.encoder.layer.{i}`.
    fn block(&mut self, x: &str, i: usize, mask4: &str, cos: &str, sin: &str) -> Result<String> {
        let c = self.c;
        let h = c.hidden_size;
        let p = format!("molformer.encoder.layer.{i}");
        let a = format!("{p}.attention.self");
        let (r, v) = self.rotary_heads(x, &a, cos, sin)?;
        let (fq, fk) = self.features(&r, &a, mask4)?;
        let ctx = self.linear_attention(&fq, &fk, &v, &a);
        // Output projection, residual, post-LayerNorm; then the feed-forward.
        let ao = self.linear(&ctx, &format!("{p}.attention.output.dense"), h, h)?;
        let ao = self
            .g
            .op("Add", &format!("{p}.attention.residual"), &[&ao, x], &[]);
        let ao = self.layer_norm(&ao, &format!("{p}.attention.output.LayerNorm"))?;
        let f = self.linear(
            &ao,
            &format!("{p}.intermediate.dense"),
            h,
            c.intermediate_size,
        )?;
        let f = self.gelu(&f, &format!("{p}.intermediate.gelu"));
        let f = self.linear(&f, &format!("{p}.output.dense"), c.intermediate_size, h)?;
        let f = self
            .g
            .op("Add", &format!("{p}.output.residual"), &[&f, &ao], &[]);
        self.layer_norm(&f, &format!("{p}.output.LayerNorm"))
    }

    /// Queries and keys with rotary positions, stacked as `[2, b, heads, t, d]`, and the
    /// values as `[b, heads, t, d]`, of the attention `a`.
    fn rotary_heads(&mut self, x: &str, a: &str, cos: &str, sin: &str) -> Result<(String, String)> {
        let (heads, d) = (self.c.num_attention_heads, self.c.head_dim());
        // Queries and keys side by side on [b, t, 2·hidden], rotary applied to both at once:
        // y·cos + rotate_half(y)·sin, where rotate_half([a, b]) = [-b, a] per head comes out
        // of the fused projection with its halves swapped, and the sign is folded into `sin`
        // (exact). Then [2, b, heads, t, d]: queries and keys stacked on a leading axis.
        let [qk, qks, v]: [String; 3] =
            self.qkv(x, a)?.try_into().expect("Split has three outputs");
        let yc = self.g.op("Mul", &format!("{a}.qk.cos"), &[&qk, cos], &[]);
        let ys = self.g.op("Mul", &format!("{a}.qk.sin"), &[&qks, sin], &[]);
        let r = self.g.op("Add", &format!("{a}.qk.rope"), &[&yc, &ys], &[]);
        let stacked = self.g.ints(
            &format!("{a}.qk.heads_shape"),
            &[0, 0, 2, heads as i64, d as i64],
        );
        let r = self
            .g
            .op("Reshape", &format!("{a}.qk.heads"), &[&r, &stacked], &[]);
        let r = self.g.op(
            "Transpose",
            &format!("{a}.qk.sbhtd"),
            &[&r],
            &[("perm", Attr::Ints(vec![2, 0, 3, 1, 4]))],
        );
        let split_shape = self
            .g
            .ints(&format!("{a}.heads_shape"), &[0, 0, heads as i64, d as i64]);
        let v = self.g.op(
            "Reshape",
            &format!("{a}.value.heads"),
            &[&v, &split_shape],
            &[],
        );
        let v = self.g.op(
            "Transpose",
            &format!("{a}.value.bhtd"),
            &[&v],
            &[("perm", Attr::Ints(vec![0, 2, 1, 3]))],
        );
        Ok((r, v))
    }

    /// The random-feature maps of the queries and keys `r` (`[2, b, heads, t, d]`), the
    /// keys' masked by `mask4`: `(φ(Q), φ(K))`, each with a leading axis of size 1.
    fn features(&mut self, r: &str, a: &str, mask4: &str) -> Result<(String, String)> {
        let (d, m) = (self.c.head_dim(), self.c.num_random_features);
        // Random-feature map φ(y) = relu(y W), W [d, m], on queries and keys together; the
        // leading axis of size 1 that each keeps broadcasts against [b, heads, ...] below.
        let fm = self.w.take(&format!("{a}.feature_map.weight"), &[d, m])?;
        let fmn = self
            .g
            .init_f32(&format!("{a}.feature_map.weight"), &[d, m], &fm.data);
        let f = self.g.op("MatMul", &format!("{a}.f.mm"), &[r, &fmn], &[]);
        let f = self.g.op("Relu", &format!("{a}.f"), &[&f], &[]);
        let ones = self.g.ints(&format!("{a}.f.sizes"), &[1, 1]);
        let [fq, fk]: [String; 2] = self
            .g
            .node(
                "",
                "Split",
                &[&format!("{a}.fq"), &format!("{a}.fk.relu")],
                &[&f, &ones],
                &[("axis", Attr::Int(0))],
            )
            .try_into()
            .expect("Split has two outputs");
        let fk = self.g.op("Mul", &format!("{a}.fk"), &[&fk, mask4], &[]);
        Ok((fq, fk))
    }

    /// Linear attention of the feature maps over the values `v`, merged back to
    /// `[b·t, hidden]`.
    fn linear_attention(&mut self, fq: &str, fk: &str, v: &str, a: &str) -> String {
        let h = self.c.hidden_size;
        // Linear attention: KV = φ(K)ᵀ V, n = max(φ(Q)·Σφ(K), eps), ctx = φ(Q) KV / n.
        let fkt = self.g.op(
            "Transpose",
            &format!("{a}.fk_t"),
            &[fk],
            &[("perm", Attr::Ints(vec![0, 1, 2, 4, 3]))],
        );
        let kv = self.g.op("MatMul", &format!("{a}.kv"), &[&fkt, v], &[]);
        let ax_seq = self.g.ints(&format!("{a}.axis_seq"), &[3]);
        let ksum = self.g.op(
            "ReduceSum",
            &format!("{a}.ksum"),
            &[fk, &ax_seq],
            &[("keepdims", Attr::Int(1))],
        );
        let qk = self.g.op("Mul", &format!("{a}.qk"), &[fq, &ksum], &[]);
        let ax_last = self.g.ints(&format!("{a}.axis_last"), &[-1]);
        let n = self.g.op(
            "ReduceSum",
            &format!("{a}.norm_raw"),
            &[&qk, &ax_last],
            &[("keepdims", Attr::Int(1))],
        );
        let eps = self
            .g
            .scalar(&format!("{a}.eps"), self.c.linear_attention_eps as f32);
        let n = self.g.op("Max", &format!("{a}.norm"), &[&n, &eps], &[]);
        let ctx = self
            .g
            .op("MatMul", &format!("{a}.ctx_raw"), &[fq, &kv], &[]);
        let ctx = self.g.op("Div", &format!("{a}.ctx_bhtd"), &[&ctx, &n], &[]);
        let ctx = self.g.op(
            "Transpose",
            &format!("{a}.ctx_bthd"),
            &[&ctx],
            &[("perm", Attr::Ints(vec![0, 1, 3, 2, 4]))],
        );
        let merge = self.g.ints(&format!("{a}.merge_shape"), &[-1, h as i64]);
        self.g
            .op("Reshape", &format!("{a}.ctx"), &[&ctx, &merge], &[])
    }
}

/// Builds the prediction graph of a model with a sequence head, consuming the tensors it uses
/// from `weights`.
pub fn build(
    config: &Config,
    meta: &ModelMeta,
    weights: &mut Weights,
    quantize: Quantize,
) -> Result<onnx_protobuf::GraphProto> {
    config.validate()?;
    let num_labels = head_outputs(meta, weights)?;
    let (mut g, ids, mask) = start_graph(quantize);
    let (_, z) = forward(&mut g, &ids, &mask, config, weights, quantize, num_labels)?;
    let out = label_units(&mut g, &z, meta, io::PREDICTION);
    debug_assert_eq!(out, io::PREDICTION);
    g.output(&out, DataType::FLOAT, &[Dim::Dynamic("batch")]);
    Ok(g.into_proto())
}

/// A new graph with the two inputs (`input_ids`, `attention_mask`), storing its weights as
/// `quantize` says.
pub(super) fn start_graph(quantize: Quantize) -> (Graph, String, String) {
    let mut g = Graph::new("lipo_molformer");
    g.store_half(quantize == Quantize::Float16);
    let dims = [Dim::Dynamic("batch"), Dim::Dynamic("sequence")];
    let ids = g.input(io::INPUT_IDS, DataType::INT64, &dims);
    let mask = g.input(io::ATTENTION_MASK, DataType::INT64, &dims);
    (g, ids, mask)
}

/// One model's forward pass on the graph's inputs: its mean-pooled states `[batch, hidden]`
/// and its head's raw outputs `[batch, num_labels]`.
pub(super) fn forward(
    g: &mut Graph,
    ids: &str,
    mask: &str,
    config: &Config,
    weights: &mut Weights,
    quantize: Quantize,
    num_labels: usize,
) -> Result<(String, String)> {
    let mut b = Builder::new(g, weights, config, quantize);
    let maskf = b.g.op(
        "Cast",
        "mask_f",
        &[mask],
        &[("to", Attr::Int(DataType::FLOAT as i64))],
    );
    let mask_axes = b.g.ints("mask4_axes", &[1, 3]);
    let mask4 = b.g.op("Unsqueeze", "mask_b1t1", &[&maskf, &mask_axes], &[]);
    let (shape, cos, sin) = b.rotary_tables(ids);
    let (bth, flat) = b.shapes(&shape);
    let x = b.encoder(ids, &flat, &bth, &mask4, &cos, &sin)?;
    let pooled = b.pool(&x, &maskf);
    let z = b.head(&pooled, num_labels)?;
    Ok((pooled, z))
}

/// What users see from the head's first column `z`: a probability (classification) or the
/// label in its units (regression), as the value named after `hint`.
pub(super) fn label_units(g: &mut Graph, z: &str, meta: &ModelMeta, hint: &str) -> String {
    let zero_i = g.init_i64("output_column", &[], &[0]);
    let z = g.op(
        "Gather",
        "raw_output",
        &[z, &zero_i],
        &[("axis", Attr::Int(1))],
    );
    match meta.task {
        Task::Classification => g.op("Sigmoid", hint, &[&z], &[]),
        _ => {
            let sd = g.scalar("label_sd", meta.label_sd as f32);
            let mean = g.scalar("label_mean", meta.label_mean as f32);
            let y = g.op("Mul", "prediction_scaled", &[&z, &sd], &[]);
            g.op("Add", hint, &[&y, &mean], &[])
        }
    }
}

/// Outputs of the sequence head `weights` hold; an encoder (no head, or `lipo.json` says
/// task "encoder") has no prediction to export.
pub(super) fn head_outputs(meta: &ModelMeta, weights: &Weights) -> Result<usize> {
    let num_labels = weights
        .shape("classifier.out_proj.weight")
        .map(|s| s[0])
        .ok_or_else(|| {
            Error::param(
                "model",
                "has no sequence head (it is an encoder; fine-tune it first)",
            )
        })?;
    if meta.task == Task::Encoder {
        return Err(Error::param(
            "model",
            "lipo.json says task \"encoder\": there is no prediction to export",
        ));
    }
    Ok(num_labels)
}

impl<'a> Builder<'a> {
    /// A builder on `g` with the shared constants.
    fn new(g: &'a mut Graph, w: &'a mut Weights, c: &'a Config, quantize: Quantize) -> Self {
        let (h, d) = (c.hidden_size, c.head_dim());
        let one = g.scalar("one", 1.0);
        let sqrt2 = g.scalar("sqrt2", std::f32::consts::SQRT_2);
        let half = g.scalar("half", 0.5);
        let swap: Vec<usize> = (0..h)
            .map(|o| {
                let (head, c) = (o / d, o % d);
                head * d + (c + d / 2) % d
            })
            .collect();
        Builder {
            g,
            w,
            c,
            one,
            sqrt2,
            half,
            swap,
            quantize,
            qkv_shape: String::new(),
        }
    }

    /// The shape of `ids` and the rotary tables `(cos, sin)` on `[t, 2·hidden]`, for queries
    /// and keys at once (the sign of `rotate_half` folded into `sin`).
    fn rotary_tables(&mut self, ids: &str) -> (String, String, String) {
        let (h, d) = (self.c.hidden_size, self.c.head_dim());
        let g = &mut self.g;
        // Rotary angles [t, hidden]: positions 0..t times inv_freq, repeated for each head.
        let shape = g.op("Shape", "ids_shape", &[ids], &[]);
        let one_i = g.init_i64("index_one", &[], &[1]);
        let zero_i = g.init_i64("index_zero", &[], &[0]);
        let t = g.op(
            "Gather",
            "seq_len",
            &[&shape, &one_i],
            &[("axis", Attr::Int(0))],
        );
        let pos = g.op("Range", "positions_i", &[&zero_i, &t, &one_i], &[]);
        let pos = g.op(
            "Cast",
            "positions",
            &[&pos],
            &[("to", Attr::Int(DataType::FLOAT as i64))],
        );
        let col_axes = g.ints("col_axes", &[1]);
        let pos = g.op("Unsqueeze", "positions_col", &[&pos, &col_axes], &[]);
        let ln = -(10000f64.ln()) as f32;
        let inv: Vec<f32> = (0..d / 2)
            .map(|k| ((2 * k) as f32 / d as f32 * ln).exp())
            .collect();
        let row: Vec<f32> = (0..h)
            .map(|o| {
                let c = o % d;
                inv[c % (d / 2)]
            })
            .collect();
        let inv_n = g.init_f32("rotary_inv_freq", &[1, h], &row);
        let ang = g.op("Mul", "rotary_angles", &[&pos, &inv_n], &[]);
        let cos = g.op("Cos", "rotary_cos", &[&ang], &[]);
        let sin = g.op("Sin", "rotary_sin", &[&ang], &[]);
        let sign: Vec<f32> = (0..h)
            .map(|o| if o % d < d / 2 { -1.0 } else { 1.0 })
            .collect();
        let sign = g.init_f32("rotary_sign", &[1, h], &sign);
        let sin = g.op("Mul", "rotary_sin_signed", &[&sin, &sign], &[]);
        // The same tables twice side by side, for queries and keys at once: [t, 2·hidden].
        let last = ("axis", Attr::Int(-1));
        let cos = g.op(
            "Concat",
            "rotary_cos_qk",
            &[&cos, &cos],
            std::slice::from_ref(&last),
        );
        let sin = g.op("Concat", "rotary_sin_qk", &[&sin, &sin], &[last]);
        (shape, cos, sin)
    }

    /// The shapes the blocks reshape with, from the shape of `ids`: `[batch, sequence, 5·hidden]`
    /// (kept for [`Builder::qkv`]), and `(bth, flat)`: `[batch, sequence, hidden]` and
    /// `[batch·sequence, hidden]`.
    fn shapes(&mut self, shape: &str) -> (String, String) {
        let h = self.c.hidden_size;
        let g = &mut self.g;
        // The blocks run on [batch·sequence, hidden] (so every linear layer is one 2-D product
        // with its bias fused); the attention reshapes to [batch, sequence, ...].
        let width = g.ints("qkv_width", &[5 * h as i64]);
        let qkv_shape = g.op(
            "Concat",
            "qkv_shape",
            &[shape, &width],
            &[("axis", Attr::Int(0))],
        );
        let hidden = g.ints("hidden_width", &[h as i64]);
        let bth = g.op(
            "Concat",
            "hidden_shape",
            &[shape, &hidden],
            &[("axis", Attr::Int(0))],
        );
        let flat = g.ints("flat_shape", &[-1, h as i64]);
        self.qkv_shape = qkv_shape;
        (bth, flat)
    }

    /// Embeddings and blocks on `[batch·sequence, hidden]`, then the final LayerNorm, back
    /// on `[batch, sequence, hidden]`.
    fn encoder(
        &mut self,
        ids: &str,
        flat: &str,
        bth: &str,
        mask4: &str,
        cos: &str,
        sin: &str,
    ) -> Result<String> {
        let (config, h) = (self.c, self.c.hidden_size);
        let emb = self.w.take(
            "molformer.embeddings.word_embeddings.weight",
            &[config.vocab_size, h],
        )?;
        let embn = self.g.init_f32(
            "molformer.embeddings.word_embeddings.weight",
            &[config.vocab_size, h],
            &emb.data,
        );
        let x = self.g.op(
            "Gather",
            "embeddings",
            &[&embn, ids],
            &[("axis", Attr::Int(0))],
        );
        let mut x = self.g.op("Reshape", "embeddings_flat", &[&x, flat], &[]);
        for i in 0..config.num_hidden_layers {
            x = self.block(&x, i, mask4, cos, sin)?;
        }
        let x = self.layer_norm(&x, "molformer.LayerNorm")?;
        let x = self.g.op("Reshape", "hidden_bth", &[&x, bth], &[]);
        Ok(x)
    }

    /// Masked mean pooling of the hidden states `x` `[batch, sequence, hidden]`.
    fn pool(&mut self, x: &str, maskf: &str) -> String {
        let g = &mut self.g;
        let m_axes = g.ints("mask3_axes", &[2]);
        let m3 = g.op("Unsqueeze", "mask_bt1", &[maskf, &m_axes], &[]);
        let xm = g.op("Mul", "masked_hidden", &[x, &m3], &[]);
        let seq_axis = g.ints("seq_axis", &[1]);
        let keep0 = ("keepdims", Attr::Int(0));
        let s = g.op(
            "ReduceSum",
            "hidden_sum",
            &[&xm, &seq_axis],
            std::slice::from_ref(&keep0),
        );
        let n = g.op("ReduceSum", "token_count", &[&m3, &seq_axis], &[keep0]);
        let tiny = g.scalar("count_floor", 1e-9);
        let n = g.op("Max", "token_count_floored", &[&n, &tiny], &[]);
        g.op("Div", "pooled", &[&s, &n], &[])
    }

    /// The sequence head on the pooled states: its raw outputs `[batch, num_labels]`.
    fn head(&mut self, pooled: &str, num_labels: usize) -> Result<String> {
        let (h, skip) = (self.c.hidden_size, self.c.classifier_skip_connection);
        let h1 = self.linear(pooled, "classifier.dense", h, h)?;
        let h1 = self.gelu(&h1, "classifier.gelu1");
        let r = if skip {
            self.g.op("Add", "classifier.skip1", &[&h1, pooled], &[])
        } else {
            h1
        };
        let h2 = self.linear(&r, "classifier.dense2", h, h)?;
        let h2 = self.gelu(&h2, "classifier.gelu2");
        let h2 = if skip {
            self.g.op("Add", "classifier.skip2", &[&h2, &r], &[])
        } else {
            h2
        };
        self.linear(&h2, "classifier.out_proj", h, num_labels)
    }
}
