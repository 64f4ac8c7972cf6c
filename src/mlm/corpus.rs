//! The corpus: the SMILES stream of the corpus file, its filters (held-out molecules chosen
//! by a hash, excluded molecules, length), the scan that counts it and collects the held-out
//! molecules, and the chunks of training molecules each pass reads.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use super::MlmRun;
use crate::data::{self, TableOptions};
use crate::error::{Error, Result};
use crate::progress::{Event, Monitor};
use crate::rng::SplitMix64;
use crate::tokenizer::SmilesTokenizer;

/// Reads the exclusions, scans the corpus and reports its counts: the corpus with its
/// filters and what the scan found. A corpus without a training molecule is an error.
pub(super) fn prepare<'a>(
    run: &MlmRun,
    tokenizer: &'a SmilesTokenizer,
    monitor: &mut dyn Monitor,
) -> Result<(Corpus<'a>, CorpusScan)> {
    let cfg = &run.mlm;
    monitor.event(&Event::Message {
        text: format!("scanning {}", run.corpus.display()),
    });
    let exclude = read_exclusions(&run.exclude, tokenizer)?;
    let mut corpus = Corpus {
        path: run.corpus.clone(),
        table: run.table.clone(),
        tokenizer,
        exclude,
        valid_mod: u64::MAX,
        max_tokens: cfg.max_tokens,
    };
    // Hold out about valid_size molecules: the hash modulus comes from the number of SMILES
    // entries (a quick pass without tokenizing), so it is the same on every run of the corpus.
    let entries = count_entries(&run.corpus, &run.table)?;
    corpus.valid_mod = if cfg.valid_size == 0 {
        u64::MAX
    } else {
        (entries / cfg.valid_size as u64).max(2)
    };
    let scan = corpus.scan(cfg.valid_size * 2)?;
    if scan.train == 0 {
        return Err(Error::BadFile {
            path: run.corpus.clone(),
            reason: "no usable training molecules".into(),
        });
    }
    monitor.event(&Event::Message {
        text: describe_scan(run, &scan),
    });
    Ok((corpus, scan))
}

/// The message that reports the scan's counts.
fn describe_scan(run: &MlmRun, scan: &CorpusScan) -> String {
    format!(
        "corpus: {} training, {} held out, {} excluded{}, {} skipped",
        scan.train,
        scan.valid.len(),
        scan.excluded,
        if run.exclude.is_empty() {
            " (no --exclude table)".to_string()
        } else {
            format!(
                " (in {})",
                run.exclude
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        },
        scan.skipped
    )
}

fn fnv(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Streams the SMILES of a corpus file: (1-based line, SMILES), through the one reader of
/// molecule files. Rows without a SMILES are left out; a row the reader cannot use comes back
/// with an empty SMILES, which fails to encode and is counted as skipped.
struct SmilesStream(crate::smiles_stream::SmilesStream);

impl SmilesStream {
    fn open(path: &Path, table: &TableOptions) -> Result<Self> {
        crate::smiles_stream::SmilesStream::open(path, table.smiles_col.as_deref()).map(Self)
    }

    fn next_smiles(&mut self) -> Option<Result<(usize, String)>> {
        loop {
            let row = match self.0.next()? {
                Ok(row) => row,
                Err(e) => return Some(Err(e)),
            };
            if row.problem.is_some() {
                return Some(Ok((row.line, String::new())));
            }
            if !row.smiles.is_empty() {
                return Some(Ok((row.line, row.smiles)));
            }
        }
    }
}

/// Number of SMILES entries of a corpus file.
fn count_entries(path: &Path, table: &TableOptions) -> Result<u64> {
    let mut s = SmilesStream::open(path, table)?;
    let mut n = 0;
    while let Some(item) = s.next_smiles() {
        item?;
        n += 1;
    }
    Ok(n)
}

/// The corpus with its filters: held-out molecules (hash), excluded molecules, length.
pub(super) struct Corpus<'a> {
    path: PathBuf,
    table: TableOptions,
    tokenizer: &'a SmilesTokenizer,
    exclude: HashSet<String>,
    valid_mod: u64,
    max_tokens: usize,
}

/// What one pass over the corpus found.
#[derive(Default)]
pub(super) struct CorpusScan {
    /// Training molecules per pass.
    pub(super) train: u64,
    /// The held-out molecules' tokens (at most twice `valid_size`).
    pub(super) valid: Vec<Vec<u32>>,
    /// Rows in an excluded table.
    pub(super) excluded: u64,
    /// Rows unreadable or too long.
    pub(super) skipped: u64,
}

impl Corpus<'_> {
    fn is_valid(&self, smiles: &str) -> bool {
        fnv(smiles) % self.valid_mod == 0
    }

    /// One pass: counts, held-out molecules.
    fn scan(&self, valid_cap: usize) -> Result<CorpusScan> {
        let mut s = SmilesStream::open(&self.path, &self.table)?;
        let mut scan = CorpusScan::default();
        while let Some(item) = s.next_smiles() {
            let (_, smi) = item?;
            if self.exclude.contains(&smi) {
                scan.excluded += 1;
                continue;
            }
            match self.tokenizer.encode(&smi) {
                Ok(ids) if ids.len() <= self.max_tokens => {
                    if self.is_valid(&smi) {
                        if scan.valid.len() < valid_cap {
                            scan.valid.push(ids);
                        }
                    } else {
                        scan.train += 1;
                    }
                }
                _ => scan.skipped += 1,
            }
        }
        Ok(scan)
    }

    /// Iterates the training molecules in chunks of `chunk_size`.
    pub(super) fn chunks(&self, chunk_size: usize) -> Result<ChunkIter<'_>> {
        Ok(ChunkIter {
            corpus: self,
            stream: SmilesStream::open(&self.path, &self.table)?,
            chunk_size,
        })
    }
}

/// The training molecules of one pass, chunk by chunk.
pub(super) struct ChunkIter<'a> {
    corpus: &'a Corpus<'a>,
    stream: SmilesStream,
    chunk_size: usize,
}

impl ChunkIter<'_> {
    /// Next chunk of token sequences (`None` at the end); with `skip`, molecules are only
    /// counted, not tokenized. With `augment` = (share, stream), that share of the molecules
    /// is written as a random SMILES drawn from the stream; one that cannot be rewritten, or
    /// whose rewrite is longer than `max_tokens`, stays as given, so chunks hold the same
    /// molecules with or without augmentation.
    pub(super) fn next_chunk(
        &mut self,
        skip: bool,
        mut augment: Option<(f64, SplitMix64)>,
    ) -> Result<Option<Vec<Vec<u32>>>> {
        let c = self.corpus;
        let mut out = Vec::with_capacity(self.chunk_size);
        let mut n = 0;
        while n < self.chunk_size {
            let Some(item) = self.stream.next_smiles() else {
                break;
            };
            let (_, smi) = item?;
            if c.exclude.contains(&smi) || c.is_valid(&smi) {
                continue;
            }
            match c.tokenizer.encode(&smi) {
                Ok(ids) if ids.len() <= c.max_tokens => {
                    n += 1;
                    if skip {
                        continue;
                    }
                    let rewritten = match &mut augment {
                        Some((share, rng)) => (rng.next_f64() < *share)
                            .then(|| crate::augment::randomize(&smi, rng))
                            .flatten()
                            .and_then(|r| c.tokenizer.encode_written(&r).ok())
                            .filter(|r| r.len() <= c.max_tokens),
                        None => None,
                    };
                    out.push(rewritten.unwrap_or(ids));
                }
                _ => {}
            }
        }
        Ok(if n == 0 { None } else { Some(out) })
    }
}

fn read_exclusions(paths: &[PathBuf], tokenizer: &SmilesTokenizer) -> Result<HashSet<String>> {
    let mut set = HashSet::new();
    let opts = TableOptions {
        skip_bad_rows: true,
        ..TableOptions::default()
    };
    for p in paths {
        let d = data::read_smiles(p, tokenizer, &opts)?;
        set.extend(d.records.into_iter().map(|r| r.smiles));
    }
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn augmentation_rewrites_molecules_reproducibly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("corpus.smi");
        let smiles = [
            "CCO",
            "c1ccccc1O",
            "CC(=O)Nc1ccc(O)cc1",
            "C",
            "OC(=O)C1CCCN1",
        ];
        std::fs::write(&path, smiles.join("\n")).unwrap();
        let tokenizer = SmilesTokenizer::molformer();
        let corpus = Corpus {
            path: path.clone(),
            table: TableOptions::default(),
            tokenizer: &tokenizer,
            exclude: HashSet::new(),
            valid_mod: u64::MAX,
            max_tokens: 256,
        };
        let read = |augment: Option<(f64, SplitMix64)>| {
            let mut it = corpus.chunks(100).unwrap();
            it.next_chunk(false, augment).unwrap().unwrap()
        };
        let plain = read(None);
        let given: Vec<Vec<u32>> = smiles
            .iter()
            .map(|s| tokenizer.encode(s).unwrap())
            .collect();
        assert_eq!(plain, given);
        assert_eq!(read(Some((0.0, SplitMix64::new(3)))), given);
        let rounds: Vec<Vec<Vec<u32>>> = (0..20)
            .map(|k| read(Some((1.0, SplitMix64::new(k)))))
            .collect();
        // Same molecules in the same slots: a one-atom molecule has one way to be written.
        assert!(rounds.iter().all(|r| r.len() == 5 && r[3] == given[3]));
        assert!(rounds.iter().any(|r| r[2] != given[2]), "never rewritten");
        // A rewrite keeps the molecule's tokens, only their order and ring labels change.
        let atoms = |ids: &[u32]| {
            let mut v: Vec<u32> = ids.to_vec();
            v.retain(|&t| {
                let tok = tokenizer.id_to_token(t).unwrap_or_default();
                !"()0123456789".contains(tok.as_str())
            });
            v.sort_unstable();
            v
        };
        for r in &rounds {
            for (a, b) in r.iter().zip(&given) {
                assert_eq!(atoms(a), atoms(b));
            }
        }
        assert_eq!(read(Some((1.0, SplitMix64::new(7)))), rounds[7]);
    }
}
