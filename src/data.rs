//! Labelled and unlabelled SMILES tables (CSV, TSV, optionally gzip-compressed), validation of
//! every row with file:line errors, and the protocol's seeded train/validation/test split.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::rng::SplitMix64;
use crate::smiles_stream::{Columns, SmilesRow, SmilesStream};
use crate::tokenizer::SmilesTokenizer;

/// One usable row of a table.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// The SMILES as written in the file.
    pub smiles: String,
    /// The label, when the table has one.
    pub label: Option<f64>,
    /// 1-based line number in the file.
    pub line: usize,
    /// Token ids with `<bos>`/`<eos>`.
    pub ids: Vec<u32>,
}

/// A row that was skipped, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SkippedRow {
    /// 1-based line number.
    pub line: usize,
    /// The reason, as the error would have said it.
    pub reason: String,
}

/// A table of molecules read from one file.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// Where it came from.
    pub path: PathBuf,
    /// The SMILES column's header.
    pub smiles_col: String,
    /// The label column's header, when labelled.
    pub label_col: Option<String>,
    /// The usable rows, in file order.
    pub records: Vec<Record>,
    /// Rows skipped because the user asked for skipping.
    pub skipped: Vec<SkippedRow>,
}

/// How to read a table.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TableOptions {
    /// Header of the SMILES column (default: the first header containing "smiles", any case).
    pub smiles_col: Option<String>,
    /// Header of the label column (default: one of exp, label, y, logd, target, value).
    pub label_col: Option<String>,
    /// Skip bad rows (counted and reported) instead of failing on the first one.
    pub skip_bad_rows: bool,
}

const LABEL_NAMES: [&str; 7] = ["exp", "label", "y", "logd", "logd7.4", "target", "value"];

pub use crate::smiles_stream::{delimiter_for, open_maybe_gz};

/// Reads a table of SMILES and, when `labelled`, numeric labels. Every SMILES is checked and
/// tokenized; a bad row (including a row with more fields than the header) is an error
/// naming file:line unless `opts.skip_bad_rows`, when it is counted in
/// [`Dataset::skipped`] (one entry per line a broken row spans).
pub fn read_table(
    path: &Path,
    tokenizer: &SmilesTokenizer,
    opts: &TableOptions,
    labelled: bool,
) -> Result<Dataset> {
    let stream = SmilesStream::open_columns(
        path,
        Columns {
            smiles: opts.smiles_col.as_deref(),
            label: opts.label_col.as_deref(),
            labels: labelled,
            default_labels: &LABEL_NAMES,
        },
    )?;
    collect(stream, tokenizer, opts)
}

/// Reads and tokenizes every row of `stream` into a [`Dataset`].
fn collect(
    stream: SmilesStream,
    tokenizer: &SmilesTokenizer,
    opts: &TableOptions,
) -> Result<Dataset> {
    let path = stream.path().to_path_buf();
    let (smiles_col, label_col) = stream.headers();
    let mut records = Vec::new();
    let mut skipped = Vec::new();
    for row in stream {
        let row = row?;
        match parse_row(&row, tokenizer) {
            Ok(Some(rec)) => records.push(rec),
            Ok(None) => {}
            Err(reason) if opts.skip_bad_rows => {
                skipped.extend((row.line..row.line + row.lines).map(|line| SkippedRow {
                    line,
                    reason: reason.clone(),
                }))
            }
            Err(reason) => {
                return Err(Error::BadRow {
                    path,
                    line: row.line,
                    reason,
                })
            }
        }
    }
    if records.is_empty() {
        return Err(Error::BadFile {
            path,
            reason: "no usable rows".into(),
        });
    }
    if !skipped.is_empty() {
        tracing::warn!(
            "{}: skipped {} lines of bad rows (first: line {}: {})",
            path.display(),
            skipped.len(),
            skipped[0].line,
            skipped[0].reason
        );
    }
    Ok(Dataset {
        path,
        smiles_col,
        label_col,
        records,
        skipped,
    })
}

fn parse_row(
    row: &SmilesRow,
    tokenizer: &SmilesTokenizer,
) -> std::result::Result<Option<Record>, String> {
    if let Some(p) = &row.problem {
        return Err(p.clone());
    }
    if row.smiles.is_empty() {
        return Err("empty SMILES".into());
    }
    let label = match &row.label {
        Some(raw) => {
            let v: f64 = raw
                .parse()
                .map_err(|_| format!("label {raw:?} is not a number"))?;
            if !v.is_finite() {
                return Err(format!("label {raw:?} is not finite"));
            }
            Some(v)
        }
        None => None,
    };
    let ids = tokenizer.encode(&row.smiles).map_err(|e| e.to_string())?;
    Ok(Some(Record {
        smiles: row.smiles.clone(),
        label,
        line: row.line,
        ids,
    }))
}

/// Reads SMILES, one per line, from a plain list (`.smi`/`.txt`, first whitespace-separated
/// field) or a table with a header (`.csv`/`.tsv`).
pub fn read_smiles(
    path: &Path,
    tokenizer: &SmilesTokenizer,
    opts: &TableOptions,
) -> Result<Dataset> {
    read_table(path, tokenizer, opts, false)
}

impl Dataset {
    /// The labels of the given rows (panics on unlabelled rows; tables read with
    /// `labelled = true` always have labels).
    pub fn labels(&self, rows: &[usize]) -> Vec<f64> {
        rows.iter()
            .map(|&i| self.records[i].label.expect("labelled table"))
            .collect()
    }
}

/// The protocol's split: row indices (0-based, file order of usable rows).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Split {
    /// The seed that produced it.
    pub seed: u64,
    /// Gradient rows.
    pub train: Vec<usize>,
    /// Early stopping, epoch choice, influence targets.
    pub valid: Vec<usize>,
    /// Final numbers only.
    pub test: Vec<usize>,
}

impl Split {
    /// Shuffles `0..n` with `seed`; the first `1 - test_frac` is train, the rest test; then
    /// `valid_frac` of train (shuffled again with the same seed) is held out as validation.
    pub fn new(n: usize, seed: u64, test_frac: f64, valid_frac: f64) -> Result<Split> {
        for (name, f) in [
            ("test fraction", test_frac),
            ("validation fraction", valid_frac),
        ] {
            if !(0.0..1.0).contains(&f) {
                return Err(Error::param(name, format!("{f} is not in [0, 1)")));
            }
        }
        let mut rows: Vec<usize> = (0..n).collect();
        SplitMix64::derive(seed, "split").shuffle(&mut rows);
        let n_test = (n as f64 * test_frac).round() as usize;
        let test = rows.split_off(n - n_test);
        let mut train = rows;
        SplitMix64::derive(seed, "validation").shuffle(&mut train);
        let n_valid = (train.len() as f64 * valid_frac).round() as usize;
        let valid = train.split_off(train.len() - n_valid);
        if train.is_empty()
            || (valid_frac > 0.0 && valid.is_empty())
            || (test_frac > 0.0 && test.is_empty())
        {
            return Err(Error::param(
                "data",
                format!("{n} rows are too few to split"),
            ));
        }
        Ok(Split {
            seed,
            train,
            valid,
            test,
        })
    }

    /// The rows that are not test under `Split::new(n, seed, test_frac, ·)` (the same test
    /// rows whatever the validation share), dealt into `count` folds in a shuffled order.
    pub fn folds(
        n: usize,
        seed: u64,
        test_frac: f64,
        count: usize,
    ) -> Result<(Vec<usize>, Vec<Vec<usize>>)> {
        let outer = Split::new(n, seed, test_frac, 0.0)?;
        if count < 2 || outer.train.len() < 2 * count {
            return Err(Error::param(
                "ensemble",
                format!(
                    "{} rows that are not test are too few for {count} folds",
                    outer.train.len()
                ),
            ));
        }
        let mut pool = outer.train;
        pool.sort_unstable();
        SplitMix64::derive(seed, "folds").shuffle(&mut pool);
        let mut folds = vec![Vec::new(); count];
        for (p, row) in pool.into_iter().enumerate() {
            folds[p % count].push(row);
        }
        Ok((outer.test, folds))
    }

    /// Member `index` of a `count`-fold ensemble: validation is fold `index` of
    /// [`Split::folds`], training the other folds, test the same rows as [`Split::new`].
    pub fn fold(n: usize, seed: u64, test_frac: f64, index: usize, count: usize) -> Result<Split> {
        let (test, mut folds) = Split::folds(n, seed, test_frac, count)?;
        if index >= count {
            return Err(Error::param(
                "fold",
                format!("fold {index} of {count} does not exist"),
            ));
        }
        let valid = std::mem::take(&mut folds[index]);
        let train = folds.concat();
        Ok(Split {
            seed,
            train,
            valid,
            test,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_partition_the_rows_that_are_not_test() {
        let base = Split::new(103, 3, 0.2, 0.1).unwrap();
        let (test, folds) = Split::folds(103, 3, 0.2, 5).unwrap();
        assert_eq!(test, base.test, "the test rows of the seed's usual split");
        let mut all: Vec<usize> = folds.concat();
        all.extend(&test);
        all.sort_unstable();
        assert_eq!(all, (0..103).collect::<Vec<_>>());
        assert!(folds.iter().all(|f| f.len() == 16 || f.len() == 17));
        for (k, fold) in folds.iter().enumerate() {
            let s = Split::fold(103, 3, 0.2, k, 5).unwrap();
            assert_eq!(&s.valid, fold);
            assert_eq!(
                s.train.len() + s.valid.len(),
                82,
                "103 rows less 21 test rows"
            );
            assert!(s
                .train
                .iter()
                .all(|r| !s.valid.contains(r) && !s.test.contains(r)));
        }
        assert!(Split::fold(103, 3, 0.2, 5, 5).is_err());
        assert!(
            Split::folds(9, 3, 0.2, 5).is_err(),
            "7 rows are too few for 5 folds of 2"
        );
        let (none, folds) = Split::folds(40, 1, 0.0, 4).unwrap();
        assert!(none.is_empty());
        assert_eq!(folds.concat().len(), 40);
    }

    #[test]
    fn split_is_disjoint_and_complete() {
        let s = Split::new(100, 7, 0.2, 0.1).unwrap();
        assert_eq!((s.train.len(), s.valid.len(), s.test.len()), (72, 8, 20));
        let mut all: Vec<usize> = s
            .train
            .iter()
            .chain(&s.valid)
            .chain(&s.test)
            .copied()
            .collect();
        all.sort();
        assert_eq!(all, (0..100).collect::<Vec<_>>());
        assert_eq!(s, Split::new(100, 7, 0.2, 0.1).unwrap());
        assert_ne!(s.test, Split::new(100, 8, 0.2, 0.1).unwrap().test);
    }

    #[test]
    fn bad_rows_name_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("d.csv");
        std::fs::write(&p, "smiles,exp\nCCO,1.0\nCCN,abc\n,2\nC1CC,nan\n").unwrap();
        let t = SmilesTokenizer::molformer();
        let e = read_table(&p, &t, &TableOptions::default(), true)
            .unwrap_err()
            .to_string();
        assert!(e.ends_with("d.csv:3: label \"abc\" is not a number"), "{e}");
        let opts = TableOptions {
            skip_bad_rows: true,
            ..Default::default()
        };
        let d = read_table(&p, &t, &opts, true).unwrap();
        assert_eq!(d.records.len(), 1);
        assert_eq!(
            d.skipped.iter().map(|s| s.line).collect::<Vec<_>>(),
            vec![3, 4, 5]
        );
    }

    #[test]
    fn tsv_gz_with_named_columns() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("d.tsv.gz");
        let mut gz = flate2::write::GzEncoder::new(
            std::fs::File::create(&p).unwrap(),
            flate2::Compression::fast(),
        );
        gz.write_all(b"id\tmol\tlogD\n1\tc1ccccc1\t2.5\n2\tCl\\C=C/Cl\t1.5")
            .unwrap();
        gz.finish().unwrap();
        let opts = TableOptions {
            smiles_col: Some("mol".into()),
            label_col: Some("logD".into()),
            ..Default::default()
        };
        let d = read_table(&p, &SmilesTokenizer::molformer(), &opts, true).unwrap();
        assert_eq!(d.records.len(), 2);
        assert_eq!(d.records[1].label, Some(1.5));
        assert_eq!(d.records[1].line, 3);
    }
}
