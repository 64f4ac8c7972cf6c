//! What each epoch trains on, in which order: batches of similar-length molecules, and the
//! SMILES augmentation that rewrites a share of the training molecules each epoch.

use crate::data::Dataset;
use crate::progress::{Event, Monitor};
use crate::rng::SplitMix64;
use crate::smiles::Molecule;
use crate::tokenizer::SmilesTokenizer;

use super::FinetuneConfig;

/// Groups `rows` into batches of `batch_size` molecules of similar length: rows are shuffled,
/// cut into windows of 50 batches, sorted by length within a window, and the batches shuffled.
pub fn bucketed_batches(
    rows: &[usize],
    lengths: &[usize],
    batch_size: usize,
    rng: &mut SplitMix64,
) -> Vec<Vec<usize>> {
    let mut rows = rows.to_vec();
    rng.shuffle(&mut rows);
    let mut batches = Vec::new();
    for window in rows.chunks(batch_size * 50) {
        let mut w = window.to_vec();
        w.sort_by_key(|&r| lengths[r]);
        batches.extend(w.chunks(batch_size).map(|c| c.to_vec()));
    }
    rng.shuffle(&mut batches);
    batches
}

/// The training molecules (`train` rows of `data`) the augmenter can rewrite, parsed once;
/// empty without augmentation. Says how many stay as given.
pub(super) fn rewritable_graphs(
    data: &Dataset,
    train: &[usize],
    cfg: &FinetuneConfig,
    monitor: &mut dyn Monitor,
) -> Vec<Option<Molecule>> {
    if cfg.augment > 0.0 {
        let g: Vec<Option<Molecule>> = train
            .iter()
            .map(|&r| crate::augment::rewritable(&data.records[r].smiles))
            .collect();
        let kept = g.iter().filter(|g| g.is_none()).count();
        monitor.event(&Event::Message {
            text: format!(
                "SMILES augmentation on {:.0} % of training molecules per epoch ({kept} of {} cannot be rewritten and stay as given)",
                100.0 * cfg.augment,
                g.len()
            ),
        });
        g
    } else {
        vec![]
    }
}

/// The token ids every row trains on in `epoch`: the SMILES as given, except that with
/// `cfg.augment > 0` that share of the training rows (`train`, parsed in `graphs`) is a
/// random SMILES of the same molecule, drawn from a stream of the seed and the epoch so that
/// a resumed run sees the same molecules.
pub(super) fn augmented_ids(
    data: &Dataset,
    train: &[usize],
    graphs: &[Option<Molecule>],
    cfg: &FinetuneConfig,
    epoch: usize,
    tokenizer: &SmilesTokenizer,
) -> Vec<Vec<u32>> {
    let mut ids: Vec<Vec<u32>> = data.records.iter().map(|r| r.ids.clone()).collect();
    if cfg.augment == 0.0 {
        return ids;
    }
    let mut rng = SplitMix64::derive(cfg.seed, &format!("augment-epoch-{epoch}"));
    for (&row, graph) in train.iter().zip(graphs) {
        let Some(graph) = graph else { continue };
        if rng.next_f64() >= cfg.augment {
            continue;
        }
        // A variant the writer declines, or with a token outside the vocabulary, keeps the
        // SMILES as given.
        let Some(variant) = graph.random_smiles(&mut rng) else {
            continue;
        };
        if let Ok(v) = tokenizer.encode_written(&variant) {
            if !v.contains(&tokenizer.unk_id()) {
                ids[row] = v;
            }
        }
    }
    ids
}
