//! BERT masking: which positions of a padded batch the model must predict, and what it sees
//! there instead.

use crate::rng::SplitMix64;
use crate::tokenizer::{MASK_ID, NUM_LEADING_SPECIAL};

/// Chooses masked positions BERT-style. Returns the corrupted ids, the flat indices of the
/// chosen positions and their original ids. At least one position is chosen per batch.
pub fn mask_tokens(
    ids: &[i64],
    mask: &[i64],
    vocab: usize,
    prob: f64,
    rng: &mut SplitMix64,
) -> (Vec<i64>, Vec<i64>, Vec<i64>) {
    let mut corrupted = ids.to_vec();
    let mut positions = Vec::new();
    let mut targets = Vec::new();
    let special = |id: i64| id < NUM_LEADING_SPECIAL as i64;
    for (i, (&id, &m)) in ids.iter().zip(mask).enumerate() {
        if m == 0 || special(id) || rng.next_f64() >= prob {
            continue;
        }
        positions.push(i as i64);
        targets.push(id);
        let r = rng.next_f64();
        if r < 0.8 {
            corrupted[i] = MASK_ID as i64;
        } else if r < 0.9 {
            corrupted[i] = NUM_LEADING_SPECIAL as i64
                + rng.below(vocab as u64 - NUM_LEADING_SPECIAL as u64 - 1) as i64;
        }
    }
    if positions.is_empty() {
        let candidates: Vec<usize> = (0..ids.len())
            .filter(|&i| mask[i] == 1 && !special(ids[i]))
            .collect();
        if !candidates.is_empty() {
            let i = candidates[rng.below(candidates.len() as u64) as usize];
            positions.push(i as i64);
            targets.push(ids[i]);
            corrupted[i] = MASK_ID as i64;
        }
    }
    (corrupted, positions, targets)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn masking_follows_bert() {
        let mut rng = SplitMix64::new(1);
        let n = 20000;
        let ids: Vec<i64> = (0..n)
            .map(|i| if i % 10 == 0 { 0 } else { 4 + (i % 50) })
            .collect();
        let mask = vec![1i64; n as usize];
        let (cor, pos, tgt) = mask_tokens(&ids, &mask, 2362, 0.15, &mut rng);
        let eligible = ids.iter().filter(|&&i| i >= 4).count() as f64;
        let frac = pos.len() as f64 / eligible;
        assert!((frac - 0.15).abs() < 0.01, "{frac}");
        assert!(
            pos.iter().all(|&p| ids[p as usize] >= 4),
            "special tokens are never chosen"
        );
        let masked = pos
            .iter()
            .filter(|&&p| cor[p as usize] == MASK_ID as i64)
            .count() as f64
            / pos.len() as f64;
        assert!((masked - 0.8).abs() < 0.03, "{masked}");
        let same = pos
            .iter()
            .filter(|&&p| cor[p as usize] == ids[p as usize])
            .count() as f64
            / pos.len() as f64;
        assert!((same - 0.1).abs() < 0.03, "{same}");
        assert_eq!(
            tgt,
            pos.iter().map(|&p| ids[p as usize]).collect::<Vec<_>>()
        );
        // Unchosen positions are untouched.
        let chosen: HashSet<i64> = pos.iter().copied().collect();
        assert!((0..n)
            .filter(|i| !chosen.contains(i))
            .all(|i| cor[i as usize] == ids[i as usize]));
    }
}
