//! MoLFormer's SMILES tokenizer, built on the `tokenizers` crate: a regex pre-tokenizer
//! (one token per atom, bond, ring digit, branch), a word-level vocabulary of 2362 entries,
//! `<bos>` … `<eos>` around every molecule and right padding.
//!
//! Unlike upstream's Python code, the single backslash of cis/trans bonds is kept, and a
//! character that no alternative of the pattern matches is an error naming the SMILES and the
//! position — nothing is silently dropped.

use std::path::Path;

use ahash::AHashMap;
use sha2::{Digest, Sha256};
use tokenizers::models::wordlevel::WordLevel;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::processors::template::TemplateProcessing;
use tokenizers::{PaddingDirection, PaddingParams, PaddingStrategy, SplitDelimiterBehavior};

use crate::error::{Error, Result};

/// MoLFormer's pre-tokenization pattern, with the backslash alternative matching one `\`.
pub const SMILES_PATTERN: &str = r"(\[[^\]]+]|Br?|Cl?|N|O|S|P|F|I|b|c|n|o|s|p|\(|\)|\.|=|#|-|\+|\\|\/|:|~|@|\?|>|\*|\$|\%[0-9]{2}|[0-9])";

/// Id of `<bos>`.
pub const BOS_ID: u32 = 0;
/// Id of `<eos>`.
pub const EOS_ID: u32 = 1;
/// Id of `<pad>`.
pub const PAD_ID: u32 = 2;
/// Id of `<mask>`.
pub const MASK_ID: u32 = 3;
/// Number of special tokens at the start of the vocabulary (`<bos>`, `<eos>`, `<pad>`, `<mask>`).
pub const NUM_LEADING_SPECIAL: u32 = 4;

/// MoLFormer's vocabulary (from the PyPI package gt4sd-molformer 0.1.3, MIT licence; see
/// `assets/vocab/LICENSE-gt4sd-molformer`).
pub const MOLFORMER_VOCAB: &str = include_str!("../assets/vocab/molformer_vocab.txt");

/// What to do with a well-formed token that is not in the vocabulary (e.g. a rare bracket atom).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UnknownTokens {
    /// Map it to `<unk>` (MoLFormer's behaviour).
    #[default]
    Unk,
    /// Reject the SMILES.
    Error,
}

/// A SMILES tokenizer: the `tokenizers` pipeline plus lipo's coverage check.
#[derive(Clone)]
pub struct SmilesTokenizer {
    inner: tokenizers::Tokenizer,
    pattern: regex::Regex,
    unk_id: u32,
    vocab_size: usize,
    vocab_hash: String,
    unknown: UnknownTokens,
    canonical: bool,
}

impl std::fmt::Debug for SmilesTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmilesTokenizer")
            .field("vocab_size", &self.vocab_size)
            .field("vocab_hash", &self.vocab_hash)
            .finish()
    }
}

fn tok_err(e: impl std::fmt::Display) -> Error {
    Error::Tokenizer(e.to_string())
}

impl SmilesTokenizer {
    /// MoLFormer's published tokenizer (2362 tokens).
    pub fn molformer() -> Self {
        let vocab: Vec<&str> = MOLFORMER_VOCAB.lines().collect();
        Self::from_vocab(&vocab).expect("the bundled vocabulary is valid")
    }

    /// A tokenizer over `vocab` (token per entry, id = index). The first four entries must be
    /// `<bos>`, `<eos>`, `<pad>`, `<mask>` and the vocabulary must contain `<unk>`.
    pub fn from_vocab(vocab: &[&str]) -> Result<Self> {
        let expected = ["<bos>", "<eos>", "<pad>", "<mask>"];
        if vocab.len() < 5 || vocab[..4] != expected {
            return Err(Error::Tokenizer(format!(
                "vocabulary must start with {expected:?} and contain <unk>"
            )));
        }
        let mut map = AHashMap::new();
        for (i, t) in vocab.iter().enumerate() {
            if map.insert(t.to_string(), i as u32).is_some() {
                return Err(Error::Tokenizer(format!(
                    "duplicate vocabulary entry {t:?}"
                )));
            }
        }
        if !map.contains_key("<unk>") {
            return Err(Error::Tokenizer("vocabulary has no <unk>".into()));
        }
        let model = WordLevel::builder()
            .vocab(map)
            .unk_token("<unk>".into())
            .build()
            .map_err(tok_err)?;
        let mut inner = tokenizers::Tokenizer::new(model);
        let split = Split::new(
            SplitPattern::Regex(SMILES_PATTERN.into()),
            SplitDelimiterBehavior::Isolated,
            false,
        )
        .map_err(tok_err)?;
        inner.with_pre_tokenizer(Some(split));
        let post = TemplateProcessing::builder()
            .try_single("<bos> $A <eos>")
            .map_err(tok_err)?
            .special_tokens(vec![("<bos>", BOS_ID), ("<eos>", EOS_ID)])
            .build()
            .map_err(tok_err)?;
        inner.with_post_processor(Some(post));
        inner.with_padding(Some(PaddingParams {
            strategy: PaddingStrategy::BatchLongest,
            direction: PaddingDirection::Right,
            pad_id: PAD_ID,
            pad_token: "<pad>".into(),
            ..Default::default()
        }));
        Self::wrap(inner)
    }

    fn wrap(inner: tokenizers::Tokenizer) -> Result<Self> {
        let unk_id = inner
            .token_to_id("<unk>")
            .ok_or_else(|| Error::Tokenizer("vocabulary has no <unk>".into()))?;
        for (tok, id) in [
            ("<bos>", BOS_ID),
            ("<eos>", EOS_ID),
            ("<pad>", PAD_ID),
            ("<mask>", MASK_ID),
        ] {
            if inner.token_to_id(tok) != Some(id) {
                return Err(Error::Tokenizer(format!("{tok} must have id {id}")));
            }
        }
        let vocab_size = inner.get_vocab_size(true);
        if let Some((t, id)) = inner
            .get_vocab(true)
            .into_iter()
            .find(|&(_, id)| id as usize >= vocab_size)
        {
            return Err(Error::Tokenizer(format!(
                "token {t:?} has id {id}, outside the {vocab_size} ids of the vocabulary"
            )));
        }
        let mut hasher = Sha256::new();
        for id in 0..vocab_size as u32 {
            let t = inner.id_to_token(id).unwrap_or_default();
            hasher.update(t.as_bytes());
            hasher.update(b"\n");
        }
        let vocab_hash = format!("{:x}", hasher.finalize());
        Ok(SmilesTokenizer {
            inner,
            pattern: regex::Regex::new(SMILES_PATTERN).expect("valid pattern"),
            unk_id,
            vocab_size,
            vocab_hash,
            unknown: UnknownTokens::Unk,
            canonical: false,
        })
    }

    /// Sets the policy for tokens outside the vocabulary.
    pub fn with_unknown_tokens(mut self, policy: UnknownTokens) -> Self {
        self.unknown = policy;
        self
    }

    /// Loads a `tokenizer.json` written by [`SmilesTokenizer::save`] (or any word-level
    /// tokenizer with the same special tokens). Only the vocabulary is read from the file
    /// (`model.vocab`, ids 0..n without gaps); the pipeline around it is lipo's own, so a
    /// crafted file cannot reach the `tokenizers` crate's deserialisers (which panic on some
    /// malformed input).
    pub fn load(path: &Path) -> Result<Self> {
        let bad = |reason: String| Error::model(path, reason);
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let json: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| bad(format!("invalid JSON: {e}")))?;
        let model = &json["model"];
        if model["type"] != "WordLevel" {
            return Err(bad(format!(
                "model.type is {}; lipo reads word-level tokenizers",
                model["type"]
            )));
        }
        let vocab = model["vocab"]
            .as_object()
            .ok_or_else(|| bad("model.vocab is not a map of tokens to ids".into()))?;
        let n = vocab.len();
        let mut tokens: Vec<Option<&str>> = vec![None; n];
        for (token, id) in vocab {
            let slot = id
                .as_u64()
                .and_then(|i| tokens.get_mut(i as usize))
                .ok_or_else(|| {
                    bad(format!(
                        "token {token:?} has id {id}, outside the {n} ids of the vocabulary"
                    ))
                })?;
            if slot.replace(token.as_str()).is_some() {
                return Err(bad(format!("id {id} is given to two tokens")));
            }
        }
        let tokens: Vec<&str> = tokens.into_iter().flatten().collect();
        Self::from_vocab(&tokens).map_err(|e| bad(e.to_string()))
    }

    /// Writes the standard `tokenizer.json`.
    pub fn save(&self, path: &Path) -> Result<()> {
        self.inner
            .save(path, true)
            .map_err(|e| Error::Tokenizer(format!("{}: {e}", path.display())))
    }

    /// Number of entries in the vocabulary.
    pub fn vocab_size(&self) -> usize {
        self.vocab_size
    }

    /// Id of `<unk>`.
    pub fn unk_id(&self) -> u32 {
        self.unk_id
    }

    /// SHA-256 of the vocabulary (tokens in id order, one per line).
    pub fn vocab_hash(&self) -> &str {
        &self.vocab_hash
    }

    /// The token of `id`, if any.
    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    /// Splits a SMILES into its tokens (no special tokens), or says which character no
    /// alternative of the pattern matches.
    pub fn split<'a>(&self, smiles: &'a str) -> Result<Vec<&'a str>> {
        let invalid = |reason: String| Error::InvalidSmiles {
            smiles: smiles.to_string(),
            reason,
        };
        if smiles.trim().is_empty() {
            return Err(invalid("empty SMILES".into()));
        }
        let mut pieces = Vec::new();
        let mut at = 0;
        for m in self.pattern.find_iter(smiles) {
            if m.start() != at {
                let c = smiles[at..].chars().next().unwrap_or(' ');
                return Err(invalid(format!(
                    "character {c:?} at position {} is not SMILES",
                    at + 1
                )));
            }
            pieces.push(m.as_str());
            at = m.end();
        }
        if at != smiles.len() {
            let c = smiles[at..].chars().next().unwrap_or(' ');
            return Err(invalid(format!(
                "character {c:?} at position {} is not SMILES",
                at + 1
            )));
        }
        Ok(pieces)
    }

    /// This tokenizer writing every SMILES in lipo's canonical form before encoding
    /// ([`crate::smiles::canonical`]) when `on`, so that every writing of a molecule gets
    /// the same tokens: the setting of models trained or exported with `canonical`.
    pub fn with_canonical(mut self, on: bool) -> Self {
        self.canonical = on;
        self
    }

    /// Whether [`SmilesTokenizer::encode`] writes SMILES canonically first.
    pub fn is_canonical(&self) -> bool {
        self.canonical
    }

    /// Encodes one SMILES as `<bos>` + token ids + `<eos>` (no padding), written canonically
    /// first when the tokenizer is [canonical](SmilesTokenizer::with_canonical).
    /// The SMILES must be valid OpenSMILES ([`crate::smiles::check`]): an invalid one is an
    /// [`Error::InvalidSmiles`] naming the position, never a sequence of tokens.
    pub fn encode(&self, smiles: &str) -> Result<Vec<u32>> {
        if !self.canonical {
            return self.encode_written(smiles);
        }
        let written = crate::smiles::canonical(smiles).map_err(|e| Error::InvalidSmiles {
            smiles: smiles.to_string(),
            reason: e.to_string(),
        })?;
        self.encode_written(&written).map_err(|e| match e {
            Error::InvalidSmiles { reason, .. } => Error::InvalidSmiles {
                smiles: smiles.to_string(),
                reason: format!("in its canonical form {written:?}: {reason}"),
            },
            other => other,
        })
    }

    /// Encodes one SMILES exactly as written (never canonically): random writings for
    /// augmentation go through here.
    pub fn encode_written(&self, smiles: &str) -> Result<Vec<u32>> {
        let pieces = self.split(smiles)?;
        crate::smiles::check(smiles).map_err(|e| Error::InvalidSmiles {
            smiles: smiles.to_string(),
            reason: e.to_string(),
        })?;
        let enc = self.inner.encode_fast(smiles, true).map_err(tok_err)?;
        let ids = enc.get_ids().to_vec();
        if ids.len() != pieces.len() + 2 {
            return Err(Error::InvalidSmiles {
                smiles: smiles.to_string(),
                reason: format!(
                    "tokenizer produced {} tokens for {} pieces",
                    ids.len() - 2,
                    pieces.len()
                ),
            });
        }
        if self.unknown == UnknownTokens::Error {
            if let Some(pos) = ids.iter().position(|&i| i == self.unk_id) {
                return Err(Error::InvalidSmiles {
                    smiles: smiles.to_string(),
                    reason: format!("token {:?} is not in the vocabulary", pieces[pos - 1]),
                });
            }
        }
        Ok(ids)
    }
}

/// A right-padded batch of encoded molecules, row-major `[batch, len]`.
#[derive(Debug, Clone, PartialEq)]
pub struct PaddedBatch {
    /// Token ids, `<pad>` after each molecule.
    pub ids: Vec<i64>,
    /// 1 for real tokens (including `<bos>`/`<eos>`), 0 for padding.
    pub mask: Vec<i64>,
    /// Number of molecules.
    pub batch: usize,
    /// Padded length (the longest molecule).
    pub len: usize,
}

/// Indices of `seqs` grouped into batches of similar length, longest first: the one batcher
/// of tch and ONNX Runtime inference, so that both pad the same molecules together.
pub fn length_sorted_batches<S: AsRef<[u32]>>(seqs: &[S], batch_size: usize) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..seqs.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(seqs[i].as_ref().len()));
    order
        .chunks(batch_size.max(1))
        .map(|c| c.to_vec())
        .collect()
}

/// Pads encoded molecules on the right to the longest one.
pub fn pad_batch<S: AsRef<[u32]>>(seqs: &[S]) -> PaddedBatch {
    let len = seqs.iter().map(|s| s.as_ref().len()).max().unwrap_or(0);
    let mut ids = vec![PAD_ID as i64; seqs.len() * len];
    let mut mask = vec![0i64; seqs.len() * len];
    for (r, s) in seqs.iter().enumerate() {
        for (c, &id) in s.as_ref().iter().enumerate() {
            ids[r * len + c] = id as i64;
            mask[r * len + c] = 1;
        }
    }
    PaddedBatch {
        ids,
        mask,
        batch: seqs.len(),
        len,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_single_backslash() {
        let t = SmilesTokenizer::molformer();
        let ids = t.encode(r"F/C=C\F").unwrap();
        assert!(ids.contains(&33), "{ids:?}");
        assert_eq!(ids.len(), 2 + 7);
    }

    #[test]
    fn rejects_garbage_with_position() {
        let t = SmilesTokenizer::molformer();
        let e = t.encode("not_a_smiles").unwrap_err().to_string();
        assert!(
            e.contains("not_a_smiles") && e.contains("'t'") && e.contains("position 3"),
            "{e}"
        );
        assert!(t.encode("").is_err());
        assert!(t.encode("CC%1").is_err());
    }

    #[test]
    fn unknown_policy() {
        let t = SmilesTokenizer::molformer();
        let ids = t.encode("[Xe+9]C").unwrap();
        assert_eq!(ids[1], t.unk_id());
        let strict = t.with_unknown_tokens(UnknownTokens::Error);
        assert!(strict
            .encode("[Xe+9]C")
            .unwrap_err()
            .to_string()
            .contains("[Xe+9]"));
    }

    /// The property the `tokenizer` fuzz target checks, on random strings here: no panic,
    /// and whatever encodes is a valid SMILES framed by `<bos>` … `<eos>`.
    #[test]
    fn random_strings_encode_only_when_valid() {
        let t = SmilesTokenizer::molformer();
        let mut rng = crate::rng::SplitMix64::new(5);
        let alphabet: Vec<char> = "CcNnOo()[]=#1234%@+-H./\\ClBr é\0".chars().collect();
        let mut encoded = 0;
        for _ in 0..5000 {
            let len = 1 + rng.below(12) as usize;
            let s: String = (0..len)
                .map(|_| alphabet[rng.below(alphabet.len() as u64) as usize])
                .collect();
            if let Ok(ids) = t.encode(&s) {
                encoded += 1;
                assert!(crate::smiles::check(&s).is_ok(), "{s:?}");
                assert_eq!((ids[0], *ids.last().unwrap()), (BOS_ID, EOS_ID));
            }
        }
        assert!(encoded > 0);
    }

    #[test]
    fn load_reads_only_the_vocabulary_and_checks_its_ids() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("tokenizer.json");
        SmilesTokenizer::molformer().save(&p).unwrap();
        let mut json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
        // A malformed decoder (the `tokenizers` crate panics on it) is never looked at.
        json["decoder"] = serde_json::json!({"type": 5});
        std::fs::write(&p, json.to_string()).unwrap();
        let t = SmilesTokenizer::load(&p).unwrap();
        assert_eq!(t.vocab_hash(), SmilesTokenizer::molformer().vocab_hash());
        json["model"]["vocab"]["C"] = serde_json::json!(99_999);
        std::fs::write(&p, json.to_string()).unwrap();
        let e = SmilesTokenizer::load(&p).unwrap_err().to_string();
        assert!(e.contains("tokenizer.json") && e.contains("99999"), "{e}");
        json["model"]["type"] = serde_json::json!("BPE");
        std::fs::write(&p, json.to_string()).unwrap();
        assert!(SmilesTokenizer::load(&p).is_err());
    }

    #[test]
    fn padding() {
        let b = pad_batch(&[vec![0u32, 5, 1], vec![0, 1]]);
        assert_eq!(b.ids, vec![0, 5, 1, 0, 1, 2]);
        assert_eq!(b.mask, vec![1, 1, 1, 1, 1, 0]);
    }
}
