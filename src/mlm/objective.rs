//! The masked-token objective: loss and accuracy of the MLM head on one batch, and on the
//! held-out molecules with a fixed masking stream.

use tch::{Kind, Tensor};

use super::masking::mask_tokens;
use super::MlmConfig;
use crate::error::{Error, Result};
use crate::model::Model;
use crate::rng::SplitMix64;
use crate::tokenizer::pad_batch;

/// Loss and accuracy of the MLM head on one batch: `(loss tensor, correct, chosen)`.
pub(super) fn mlm_step(
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
pub(super) fn evaluate(model: &Model, valid: &[Vec<u32>], cfg: &MlmConfig) -> Result<(f64, f64)> {
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
