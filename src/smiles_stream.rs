//! SMILES to predict, read row by row so that any number of molecules fits in constant
//! memory: a table with a header (`.csv`/`.tsv`, optionally `.gz`) and a SMILES column, a
//! plain list (`.smi`/`.txt`, first whitespace-separated field of each line), or standard
//! input (`-`, one SMILES per line). The SMILES are passed on as read: whether they are valid
//! is for the predictor to say, molecule by molecule.

use std::io::BufRead;
use std::path::{Path, PathBuf};

use crate::data::{delimiter_for, open_maybe_gz};
use crate::error::{Error, Result};

/// One input molecule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmilesRow {
    /// 1-based line of the input it came from.
    pub line: usize,
    /// The SMILES as written (trimmed).
    pub smiles: String,
}

enum Source {
    Lines {
        reader: Box<dyn BufRead>,
        line: usize,
    },
    Table {
        records: csv::StringRecordsIntoIter<Box<dyn BufRead>>,
        col: usize,
    },
}

/// A stream of [`SmilesRow`]s; see the [module](self) docs for the formats.
pub struct SmilesStream {
    source: Source,
    path: PathBuf,
}

impl std::fmt::Debug for SmilesStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmilesStream")
            .field("path", &self.path)
            .finish()
    }
}

fn is_list(path: &Path) -> bool {
    let name = path.to_string_lossy().to_lowercase();
    let name = name.strip_suffix(".gz").unwrap_or(&name);
    name.ends_with(".smi") || name.ends_with(".txt")
}

impl SmilesStream {
    /// Opens `path` (`-` for standard input). `smiles_col` names the table's SMILES column
    /// (default: the first header containing "smiles", case-insensitive).
    pub fn open(path: &Path, smiles_col: Option<&str>) -> Result<SmilesStream> {
        if path == Path::new("-") {
            let reader: Box<dyn BufRead> = Box::new(std::io::stdin().lock());
            return Ok(SmilesStream {
                source: Source::Lines { reader, line: 0 },
                path: PathBuf::from("<stdin>"),
            });
        }
        let reader = open_maybe_gz(path)?;
        if is_list(path) {
            return Ok(SmilesStream {
                source: Source::Lines { reader, line: 0 },
                path: path.into(),
            });
        }
        let mut rdr = csv::ReaderBuilder::new()
            .delimiter(delimiter_for(path))
            .flexible(true)
            .from_reader(reader);
        let headers = rdr
            .headers()
            .map_err(|e| Error::BadFile {
                path: path.into(),
                reason: format!("reading the header: {e}"),
            })?
            .clone();
        let col = match smiles_col {
            Some(c) => headers.iter().position(|h| h.trim() == c),
            None => headers
                .iter()
                .position(|h| h.to_lowercase().contains("smiles")),
        }
        .ok_or_else(|| Error::BadFile {
            path: path.into(),
            reason: match smiles_col {
                Some(c) => format!("no column {c:?}"),
                None => "no SMILES column (name it with --smiles-col)".into(),
            },
        })?;
        Ok(SmilesStream {
            source: Source::Table {
                records: rdr.into_records(),
                col,
            },
            path: path.into(),
        })
    }

    /// Up to `n` next rows (fewer only at the end of the input).
    pub fn next_chunk(&mut self, n: usize) -> Result<Vec<SmilesRow>> {
        let mut out = Vec::with_capacity(n.min(1 << 16));
        while out.len() < n {
            match self.next() {
                Some(r) => out.push(r?),
                None => break,
            }
        }
        Ok(out)
    }
}

impl Iterator for SmilesStream {
    type Item = Result<SmilesRow>;

    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.source {
            Source::Lines { reader, line } => loop {
                let mut buf = String::new();
                match reader.read_line(&mut buf) {
                    Ok(0) => return None,
                    Ok(_) => {
                        *line += 1;
                        if let Some(s) = buf.split_whitespace().next() {
                            return Some(Ok(SmilesRow {
                                line: *line,
                                smiles: s.to_string(),
                            }));
                        }
                    }
                    Err(e) => return Some(Err(Error::io(&self.path, e))),
                }
            },
            Source::Table { records, col } => {
                let r = records.next()?;
                Some(match r {
                    Ok(rec) => Ok(SmilesRow {
                        line: rec.position().map_or(0, |p| p.line() as usize),
                        smiles: rec.get(*col).unwrap_or("").trim().to_string(),
                    }),
                    Err(e) => Err(Error::BadRow {
                        path: self.path.clone(),
                        line: e.position().map_or(0, |p| p.line() as usize),
                        reason: e.to_string(),
                    }),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_tables_and_lists_in_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("a.csv");
        std::fs::write(&csv, "id,Smiles\n1,CCO\n2,\n3,c1ccccc1\n").unwrap();
        let mut s = SmilesStream::open(&csv, None).unwrap();
        let a = s.next_chunk(2).unwrap();
        assert_eq!(
            a,
            vec![
                SmilesRow {
                    line: 2,
                    smiles: "CCO".into()
                },
                SmilesRow {
                    line: 3,
                    smiles: "".into()
                }
            ]
        );
        assert_eq!(s.next_chunk(2).unwrap().len(), 1);
        assert!(s.next_chunk(2).unwrap().is_empty());
        let smi = dir.path().join("a.smi");
        std::fs::write(&smi, "CCO name\n\nCCN\n").unwrap();
        let rows: Vec<_> = SmilesStream::open(&smi, None)
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        assert_eq!(rows[1].line, 3);
        assert_eq!(rows[1].smiles, "CCN");
        let e = SmilesStream::open(&csv, Some("smi"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("a.csv") && e.contains("smi"), "{e}");
    }
}
