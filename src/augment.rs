//! Random SMILES of the same molecule ("SMILES enumeration") for training-time and
//! test-time augmentation, written by [`crate::smiles`]' random writer: implicit bonds stay
//! implicit, tetrahedral centres and `/`, `\` marks follow the new writing order, and
//! molecules the writer cannot rewrite faithfully (extended chirality such as `@TH1`, a `.`
//! inside a branch) are left as given.

use crate::error::Result;
use crate::rng::SplitMix64;
use crate::smiles::Molecule;
use crate::tokenizer::SmilesTokenizer;

/// A random SMILES of `smiles`' molecule, or `None` when it is not a valid SMILES or the
/// writer declines it (see [`Molecule::random_smiles`]).
pub fn randomize(smiles: &str, rng: &mut SplitMix64) -> Option<String> {
    Molecule::parse(smiles).ok()?.random_smiles(rng)
}

/// The molecule of `smiles` when the writer can rewrite it: what a training job parses once
/// per training molecule before drawing variants.
pub fn rewritable(smiles: &str) -> Option<Molecule> {
    Molecule::parse(smiles).ok().filter(Molecule::randomizable)
}

/// The seed of test-time augmentation's random SMILES, wherever a model predicts.
pub const TTA_SEED: u64 = 0;

/// Test-time augmentation's inputs: `smiles` itself, then `k` random SMILES of its molecule
/// (none when the writer declines it). The random SMILES depend only on `seed` and the
/// SMILES, so a molecule gets the same variants whatever else is predicted with it.
pub fn variants(smiles: &str, k: usize, seed: u64) -> Vec<String> {
    let mut out = vec![smiles.to_string()];
    if k > 0 {
        if let Some(g) = rewritable(smiles) {
            let mut rng = SplitMix64::derive(seed, &format!("tta {smiles}"));
            out.extend((0..k).filter_map(|_| g.random_smiles(&mut rng)));
        }
    }
    out
}

/// Test-time augmentation's encoded inputs: for each SMILES its own token ids (it must
/// encode), then those of its `k` random SMILES ([`variants`] with [`TTA_SEED`]) that encode
/// without unknown tokens. `owner[j]` is the index of the SMILES that row `j` belongs to.
pub fn encoded_variants<S: AsRef<str>>(
    smiles: &[S],
    k: usize,
    tokenizer: &SmilesTokenizer,
) -> Result<(Vec<Vec<u32>>, Vec<usize>)> {
    let mut seqs = Vec::new();
    let mut owner = Vec::new();
    for (i, s) in smiles.iter().enumerate() {
        let s = s.as_ref();
        seqs.push(tokenizer.encode(s)?);
        owner.push(i);
        for v in variants(s, k, TTA_SEED).into_iter().skip(1) {
            if let Ok(ids) = tokenizer.encode_written(&v) {
                if !ids.contains(&tokenizer.unk_id()) {
                    seqs.push(ids);
                    owner.push(i);
                }
            }
        }
    }
    Ok((seqs, owner))
}

/// The mean of `values` per owner (`0..n`), as [`encoded_variants`] groups them.
pub fn mean_by_owner(values: &[f64], owner: &[usize], n: usize) -> Vec<f64> {
    let mut sum = vec![0.0; n];
    let mut count = vec![0usize; n];
    for (&v, &i) in values.iter().zip(owner) {
        sum[i] += v;
        count[i] += 1;
    }
    sum.iter().zip(&count).map(|(s, &c)| s / c as f64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variants_start_with_the_smiles_and_repeat() {
        let v = variants("CC(=O)Nc1ccc(O)cc1", 4, 0);
        assert_eq!(v.len(), 5);
        assert_eq!(v[0], "CC(=O)Nc1ccc(O)cc1");
        assert_eq!(v, variants("CC(=O)Nc1ccc(O)cc1", 4, 0));
        assert_ne!(v, variants("CC(=O)Nc1ccc(O)cc1", 4, 1));
        assert_eq!(
            variants("F[C@TH1](Cl)(Br)I", 4, 0),
            vec!["F[C@TH1](Cl)(Br)I".to_string()]
        );
        assert_eq!(variants("CCO", 0, 0).len(), 1);
        for v in variants("C[C@H](N)C(=O)O", 8, 0) {
            assert_eq!(
                crate::smiles::graph_key(&v),
                crate::smiles::graph_key("C[C@H](N)C(=O)O")
            );
        }
    }

    #[test]
    fn declines_what_it_cannot_rewrite() {
        let mut rng = SplitMix64::new(0);
        for s in ["F[C@TH1](Cl)(Br)I", "C1CC", "C(C", "Xx", ""] {
            assert!(rewritable(s).is_none(), "{s}");
            assert!(randomize(s, &mut rng).is_none(), "{s}");
        }
    }
}
