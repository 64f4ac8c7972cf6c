//! Inference with the tch model: predictions in label units and pooled embeddings, in
//! length-sorted batches (no padding wasted on long molecules next to short ones).

use tch::{Kind, Tensor};

use crate::error::Result;
use crate::model::{Model, Task};
pub use crate::tokenizer::length_sorted_batches;
use crate::tokenizer::pad_batch;

/// Runs `f` over length-sorted batches in eval mode without gradients and scatters the
/// per-molecule rows of its `[b, k]` output back into input order.
fn map_batches<S: AsRef<[u32]>>(
    model: &Model,
    seqs: &[S],
    batch_size: usize,
    f: impl Fn(&Tensor, &Tensor) -> Result<Tensor>,
) -> Result<Vec<Vec<f32>>> {
    let mut out = vec![Vec::new(); seqs.len()];
    tch::no_grad(|| -> Result<()> {
        for idx in length_sorted_batches(seqs, batch_size) {
            let batch: Vec<&[u32]> = idx.iter().map(|&i| seqs[i].as_ref()).collect();
            let (ids, mask) = model.batch_tensors(&pad_batch(&batch));
            let y = f(&ids, &mask)?
                .to_kind(Kind::Float)
                .to_device(tch::Device::Cpu)
                .contiguous();
            let k = y.size()[1] as usize;
            let flat: Vec<f32> = Vec::<f32>::try_from(y.view([-1]))?;
            for (r, &i) in idx.iter().enumerate() {
                out[i] = flat[r * k..(r + 1) * k].to_vec();
            }
        }
        Ok(())
    })?;
    Ok(out)
}

/// Raw head outputs (standardised units for regression, logits for classification).
pub fn raw_outputs<S: AsRef<[u32]>>(
    model: &Model,
    seqs: &[S],
    batch_size: usize,
) -> Result<Vec<f64>> {
    let rows = map_batches(model, seqs, batch_size, |ids, mask| {
        model.head_forward(ids, mask, false)
    })?;
    Ok(rows.into_iter().map(|r| r[0] as f64).collect())
}

/// Test-time augmentation: for each SMILES, the mean raw output over the SMILES itself and
/// `k` random SMILES of the same molecule ([`crate::augment::variants`] with
/// [`crate::augment::TTA_SEED`], so a molecule's prediction does not depend on what else is
/// predicted, nor on which program predicts it).
/// Variants the model's tokenizer cannot encode, or encodes with unknown tokens, are left
/// out; the SMILES as given must encode.
pub fn raw_outputs_tta<S: AsRef<str>>(
    model: &Model,
    smiles: &[S],
    k: usize,
    batch_size: usize,
) -> Result<Vec<f64>> {
    let (seqs, owner) = crate::augment::encoded_variants(smiles, k, &model.tokenizer)?;
    let raw = raw_outputs(model, &seqs, batch_size)?;
    // Averaged where users see predictions: label units (linear in the raw output) or
    // probabilities (returned as the logit of the mean probability).
    let classify = model.meta.task == Task::Classification;
    let seen: Vec<f64> = raw
        .iter()
        .map(|&z| {
            if classify {
                1.0 / (1.0 + (-z).exp())
            } else {
                z
            }
        })
        .collect();
    Ok(crate::augment::mean_by_owner(&seen, &owner, smiles.len())
        .into_iter()
        .map(|m| {
            if classify {
                let p = m.clamp(1e-12, 1.0 - 1e-12);
                (p / (1.0 - p)).ln()
            } else {
                m
            }
        })
        .collect())
}

/// Predictions for SMILES that the model's tokenizer encodes, with the test-time
/// augmentation the model records (`lipo.json` `tta`; none when 0).
pub fn predict_smiles<S: AsRef<str>>(
    model: &Model,
    smiles: &[S],
    batch_size: usize,
) -> Result<Vec<f64>> {
    let raw = if model.meta.tta > 0 {
        raw_outputs_tta(model, smiles, model.meta.tta, batch_size)?
    } else {
        let seqs = smiles
            .iter()
            .map(|s| model.tokenizer.encode(s.as_ref()))
            .collect::<Result<Vec<_>>>()?;
        raw_outputs(model, &seqs, batch_size)?
    };
    Ok(raw.into_iter().map(|z| to_label_units(model, z)).collect())
}

/// Predictions in label units (regression) or probabilities (classification).
pub fn predict<S: AsRef<[u32]>>(model: &Model, seqs: &[S], batch_size: usize) -> Result<Vec<f64>> {
    let raw = raw_outputs(model, seqs, batch_size)?;
    Ok(raw.into_iter().map(|z| to_label_units(model, z)).collect())
}

/// Converts one raw head output to what the user sees.
pub fn to_label_units(model: &Model, z: f64) -> f64 {
    match model.meta.task {
        Task::Classification => 1.0 / (1.0 + (-z).exp()),
        _ => z * model.meta.label_sd + model.meta.label_mean,
    }
}

/// Mean-pooled encoder states, one `hidden_size` vector per molecule.
pub fn embed<S: AsRef<[u32]>>(
    model: &Model,
    seqs: &[S],
    batch_size: usize,
) -> Result<Vec<Vec<f32>>> {
    map_batches(model, seqs, batch_size, |ids, mask| {
        Ok(model.pooled(ids, mask, false))
    })
}
