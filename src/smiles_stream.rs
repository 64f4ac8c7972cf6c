//! The one reader of molecule files: a table with a header (`.csv`/`.tsv`, optionally `.gz`)
//! and a SMILES column (plus, when asked, a label column), a plain list (`.smi`/`.txt`, first
//! whitespace-separated field of each line), or standard input (`-`, one SMILES per line).
//! Rows are read one at a time, so any number of molecules fits in constant memory.
//!
//! The reader is strict and exact about where a row came from: a row with more fields than
//! the header, bytes that are not UTF-8, or a quoted field that runs over several lines (an
//! unclosed quote) comes back as a row with a problem and its 1-based line, and the rows
//! after it keep their true line numbers. A byte-order mark at the start of the file is
//! ignored. The SMILES themselves are passed on as read: whether they are valid is for the
//! caller to say.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// One input row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmilesRow {
    /// 1-based line of the input where the row starts (the header is line 1 of a table).
    pub line: usize,
    /// Lines the row spans (more than 1 when a quoted field holds line breaks).
    pub lines: usize,
    /// The SMILES as written (trimmed); empty when the row has none.
    pub smiles: String,
    /// The label field as written (trimmed), when a label column was asked for.
    pub label: Option<String>,
    /// Why the row cannot be used, when it cannot; `smiles` and `label` are then unreliable.
    pub problem: Option<String>,
}

enum Source {
    Lines {
        reader: Box<dyn BufRead>,
        line: usize,
    },
    Table {
        reader: csv::Reader<Box<dyn BufRead>>,
        record: csv::ByteRecord,
        fields: usize,
        col: usize,
        label: Option<usize>,
        /// The last line a row was read from, for errors that carry no position.
        line: usize,
    },
}

/// A stream of [`SmilesRow`]s; see the [module](self) docs for the formats.
pub struct SmilesStream {
    source: Source,
    path: PathBuf,
    names: (String, Option<String>),
}

impl std::fmt::Debug for SmilesStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmilesStream")
            .field("path", &self.path)
            .finish()
    }
}

/// Opens a file, decompressing `.gz`.
pub fn open_maybe_gz(path: &Path) -> Result<Box<dyn BufRead>> {
    let f = File::open(path).map_err(|e| Error::io(path, e))?;
    let r: Box<dyn Read> = if path.extension().is_some_and(|e| e == "gz") {
        Box::new(flate2::read::MultiGzDecoder::new(f))
    } else {
        Box::new(f)
    };
    Ok(Box::new(BufReader::with_capacity(1 << 16, r)))
}

/// The field delimiter of a file: tab for `.tsv`/`.tab`/`.smi` (also under `.gz`), else comma.
pub fn delimiter_for(path: &Path) -> u8 {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    let name = name.strip_suffix(".gz").unwrap_or(&name);
    if name.ends_with(".tsv") || name.ends_with(".tab") {
        b'\t'
    } else {
        b','
    }
}

/// True for plain SMILES lists (`.smi`, `.txt`, also under `.gz`).
pub fn is_list(path: &Path) -> bool {
    let name = path.to_string_lossy().to_lowercase();
    let name = name.strip_suffix(".gz").unwrap_or(&name);
    name.ends_with(".smi") || name.ends_with(".txt")
}

/// Which columns of a table to read.
#[derive(Debug, Clone, Copy, Default)]
pub struct Columns<'a> {
    /// Header of the SMILES column (default: the first header containing "smiles", any case).
    pub smiles: Option<&'a str>,
    /// Header of the label column, when labels are read (see [`Columns::labels`]).
    pub label: Option<&'a str>,
    /// Read a label column: `label`, else the first of `default_labels` present.
    pub labels: bool,
    /// Label headers tried in order when `label` is not given.
    pub default_labels: &'a [&'a str],
}

fn find_col(headers: &[String], wanted: &str) -> Option<usize> {
    headers
        .iter()
        .position(|h| h == wanted)
        .or_else(|| headers.iter().position(|h| h.eq_ignore_ascii_case(wanted)))
}

fn utf8_problem(bytes: &[u8]) -> String {
    let at = std::str::from_utf8(bytes)
        .err()
        .map_or(0, |e| e.valid_up_to());
    format!(
        "byte 0x{:02x} at column {} is not UTF-8",
        bytes.get(at).copied().unwrap_or(0),
        at + 1
    )
}

fn strip_bom(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes)
}

impl SmilesStream {
    /// Opens `path` (`-` for standard input) reading the SMILES column named `smiles_col`
    /// (default: the first header containing "smiles", case-insensitive).
    pub fn open(path: &Path, smiles_col: Option<&str>) -> Result<SmilesStream> {
        Self::open_columns(
            path,
            Columns {
                smiles: smiles_col,
                ..Columns::default()
            },
        )
    }

    /// Opens `path` reading the given columns. A plain list has no labels: asking for them
    /// is an error.
    pub fn open_columns(path: &Path, cols: Columns<'_>) -> Result<SmilesStream> {
        let bad_file = |reason: String| Error::BadFile {
            path: path.into(),
            reason,
        };
        if path == Path::new("-") || is_list(path) {
            if cols.labels {
                return Err(bad_file(
                    "a SMILES list has no labels; give a table with a header".into(),
                ));
            }
            let (reader, name): (Box<dyn BufRead>, PathBuf) = if path == Path::new("-") {
                (Box::new(std::io::stdin().lock()), "<stdin>".into())
            } else {
                (open_maybe_gz(path)?, path.into())
            };
            return Ok(SmilesStream {
                source: Source::Lines { reader, line: 0 },
                path: name,
                names: ("smiles".into(), None),
            });
        }
        // Records end at '\n' only (a '\r' before it is trimmed with the field), so a row's
        // line number, which counts '\n', is never shared by two rows.
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(delimiter_for(path))
            .terminator(csv::Terminator::Any(b'\n'))
            .flexible(true)
            .has_headers(false)
            .from_reader(open_maybe_gz(path)?);
        let mut header = csv::ByteRecord::new();
        let got = reader
            .read_byte_record(&mut header)
            .map_err(|e| bad_file(format!("cannot read the header: {e}")))?;
        if !got {
            return Err(bad_file("the file is empty (no header)".into()));
        }
        let mut headers = Vec::with_capacity(header.len());
        for (k, h) in header.iter().enumerate() {
            let h = if k == 0 { strip_bom(h) } else { h };
            let h = std::str::from_utf8(h)
                .map_err(|_| bad_file(format!("header: {}", utf8_problem(h))))?;
            headers.push(h.trim().to_string());
        }
        let list = || headers.join(", ");
        let col = match cols.smiles {
            Some(c) => find_col(&headers, c)
                .ok_or_else(|| bad_file(format!("no column {c:?} (columns: {})", list())))?,
            None => headers
                .iter()
                .position(|h| h.to_lowercase().contains("smiles"))
                .ok_or_else(|| {
                    bad_file(format!(
                        "no SMILES column; name it with --smiles-col (columns: {})",
                        list()
                    ))
                })?,
        };
        let label = if cols.labels {
            Some(match cols.label {
                Some(c) => find_col(&headers, c)
                    .ok_or_else(|| bad_file(format!("no column {c:?} (columns: {})", list())))?,
                None => cols
                    .default_labels
                    .iter()
                    .find_map(|n| find_col(&headers, n))
                    .ok_or_else(|| {
                        bad_file(format!(
                            "no label column; name it with --label-col (columns: {})",
                            list()
                        ))
                    })?,
            })
        } else {
            None
        };
        Ok(SmilesStream {
            source: Source::Table {
                reader,
                record: csv::ByteRecord::new(),
                fields: headers.len(),
                col,
                label,
                line: 1,
            },
            path: path.into(),
            names: (headers[col].clone(), label.map(|k| headers[k].clone())),
        })
    }

    /// The headers of the SMILES and label columns (`smiles` for a list).
    pub fn headers(&self) -> (String, Option<String>) {
        self.names.clone()
    }

    /// The path rows are read from (`<stdin>` for standard input).
    pub fn path(&self) -> &Path {
        &self.path
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

    fn next_line(&mut self) -> Option<Result<SmilesRow>> {
        let Source::Lines { reader, line } = &mut self.source else {
            unreachable!("called on a list")
        };
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) => return None,
                Ok(_) => {}
                Err(e) => {
                    return Some(Err(Error::BadRow {
                        path: self.path.clone(),
                        line: *line + 1,
                        reason: format!("reading failed: {e}"),
                    }))
                }
            }
            *line += 1;
            let bytes = if *line == 1 { strip_bom(&buf) } else { &buf };
            let row = |smiles: String, problem: Option<String>| SmilesRow {
                line: *line,
                lines: 1,
                smiles,
                label: None,
                problem,
            };
            match std::str::from_utf8(bytes) {
                Err(_) => return Some(Ok(row(String::new(), Some(utf8_problem(bytes))))),
                Ok(text) => {
                    if let Some(s) = text.split_whitespace().next() {
                        return Some(Ok(row(s.to_string(), None)));
                    }
                }
            }
        }
    }

    fn next_record(&mut self) -> Option<Result<SmilesRow>> {
        let Source::Table {
            reader,
            record,
            fields,
            col,
            label,
            line,
        } = &mut self.source
        else {
            unreachable!("called on a table")
        };
        loop {
            match reader.read_byte_record(record) {
                Ok(false) => return None,
                Ok(true) => {}
                Err(e) => {
                    let at = e.position().map_or(*line + 1, |p| p.line() as usize);
                    return Some(Err(Error::BadRow {
                        path: self.path.clone(),
                        line: at,
                        reason: format!("reading failed: {e}"),
                    }));
                }
            }
            let start = record.position().map_or(*line + 1, |p| p.line() as usize);
            // Line breaks inside quoted fields; one that ends the last field is the end of
            // the file swallowed by an unclosed quote, not another line.
            let trailing = record
                .iter()
                .next_back()
                .is_some_and(|f| f.ends_with(b"\n"));
            let breaks: usize = record
                .iter()
                .map(|f| f.iter().filter(|&&b| b == b'\n').count())
                .sum::<usize>()
                - usize::from(trailing);
            *line = start + breaks;
            if record.iter().all(|f| f.iter().all(u8::is_ascii_whitespace)) {
                continue;
            }
            let text = |k: usize| -> std::result::Result<String, String> {
                let f = record.get(k).unwrap_or(b"");
                std::str::from_utf8(f)
                    .map(|s| s.trim().to_string())
                    .map_err(|_| format!("field {}: {}", k + 1, utf8_problem(f)))
            };
            let mut problem = None;
            if record.iter().any(|f| f.contains(&b'\n')) {
                problem = Some(format!(
                    "a quoted field runs from line {start} to line {} (an unclosed quote?)",
                    start + breaks
                ));
            } else if record.len() > *fields {
                problem = Some(format!(
                    "{} fields but the header has {} (a decimal comma or a stray delimiter?)",
                    record.len(),
                    fields
                ));
            }
            let smiles = text(*col).unwrap_or_else(|e| {
                problem.get_or_insert(e);
                String::new()
            });
            let label = label.map(|k| {
                text(k).unwrap_or_else(|e| {
                    problem.get_or_insert(e);
                    String::new()
                })
            });
            return Some(Ok(SmilesRow {
                line: start,
                lines: breaks + 1,
                smiles,
                label,
                problem,
            }));
        }
    }
}

impl Iterator for SmilesStream {
    type Item = Result<SmilesRow>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.source {
            Source::Lines { .. } => self.next_line(),
            Source::Table { .. } => self.next_record(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(path: &Path, cols: Columns<'_>) -> Vec<SmilesRow> {
        SmilesStream::open_columns(path, cols)
            .unwrap()
            .map(|r| r.unwrap())
            .collect()
    }

    #[test]
    fn reads_tables_and_lists_in_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("a.csv");
        std::fs::write(&csv, "id,Smiles\n1,CCO\n2,\n3,c1ccccc1\n").unwrap();
        let mut s = SmilesStream::open(&csv, None).unwrap();
        let a = s.next_chunk(2).unwrap();
        assert_eq!((a[0].line, a[0].smiles.as_str()), (2, "CCO"));
        assert_eq!((a[1].line, a[1].smiles.as_str()), (3, ""));
        assert_eq!(s.next_chunk(2).unwrap().len(), 1);
        assert!(s.next_chunk(2).unwrap().is_empty());
        let smi = dir.path().join("a.smi");
        std::fs::write(&smi, "CCO name\n\nCCN\n").unwrap();
        let r = rows(&smi, Columns::default());
        assert_eq!((r[1].line, r[1].smiles.as_str()), (3, "CCN"));
        let e = SmilesStream::open(&csv, Some("smi"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("a.csv") && e.contains("smi"), "{e}");
    }

    #[test]
    fn strict_rows_keep_their_lines() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("t.csv");
        // A decimal comma, a quoted two-line field, an unclosed quote swallowing the rest.
        std::fs::write(
            &csv,
            "\u{feff}smiles,exp\nCCO,3,54\n\"C\nC\",1\nCCN,2\nCC,\"1\nCCC,1\nCCCC,2\n",
        )
        .unwrap();
        let cols = Columns {
            labels: true,
            default_labels: &["exp"],
            ..Columns::default()
        };
        let r = rows(&csv, cols);
        assert_eq!(r.len(), 4, "{r:?}");
        assert!(r[0].problem.as_deref().unwrap().contains("3 fields"));
        assert_eq!((r[1].line, r[1].lines), (3, 2));
        assert!(r[1]
            .problem
            .as_deref()
            .unwrap()
            .contains("line 3 to line 4"));
        assert_eq!(
            (r[2].line, r[2].smiles.as_str(), r[2].problem.as_deref()),
            (5, "CCN", None)
        );
        assert_eq!((r[3].line, r[3].lines), (6, 3));
        // Not UTF-8, and a byte-order mark before the first SMILES of a list.
        let smi = dir.path().join("l.smi");
        std::fs::write(&smi, b"\xef\xbb\xbfCCO\nC\xffC\nCCN\n").unwrap();
        let r = rows(&smi, Columns::default());
        assert_eq!(r[0].smiles, "CCO");
        assert!(r[1].problem.as_deref().unwrap().contains("0xff"));
        assert_eq!((r[2].line, r[2].smiles.as_str()), (3, "CCN"));
        // CRLF ends a row; a lone CR does not start another row on the same line.
        std::fs::write(&csv, "smiles,exp\r\nCCO,1\r\nC\rC,2\nCCN,3\n").unwrap();
        let r = rows(&csv, cols);
        let lines: Vec<usize> = r.iter().map(|r| r.line).collect();
        assert_eq!(lines, [2, 3, 4], "{r:?}");
        assert_eq!(
            (r[0].smiles.as_str(), r[0].label.as_deref()),
            ("CCO", Some("1"))
        );
        assert_eq!(r[2].smiles, "CCN");
    }

    /// The property the `table` fuzz target checks, on a few thousand random files here:
    /// no panic, and rows come in increasing line order.
    #[test]
    fn random_bytes_never_panic_and_lines_increase() {
        let dir = tempfile::tempdir().unwrap();
        let mut rng = crate::rng::SplitMix64::new(3);
        let alphabet = b"smiles,exp\t\"\n\r CO1=()[]#\xff\xef\xbb\xbf";
        for k in 0..2000 {
            let len = rng.below(64) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|_| alphabet[rng.below(alphabet.len() as u64) as usize])
                .collect();
            let name = ["t.csv", "t.tsv", "t.smi"][k % 3];
            let path = dir.path().join(name);
            std::fs::write(&path, &bytes).unwrap();
            let cols = Columns {
                labels: name != "t.smi",
                default_labels: &["exp"],
                ..Columns::default()
            };
            let Ok(stream) = SmilesStream::open_columns(&path, cols) else {
                continue;
            };
            let mut last = 0;
            for row in stream {
                let Ok(row) = row else { break };
                assert!(row.line > last && row.lines >= 1, "{bytes:?}");
                last = row.line + row.lines - 1;
            }
        }
    }

    #[test]
    fn a_truncated_gzip_names_the_line() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let gz = dir.path().join("t.smi.gz");
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        for _ in 0..2000 {
            e.write_all(b"CCO\n").unwrap();
        }
        let bytes = e.finish().unwrap();
        std::fs::write(&gz, &bytes[..bytes.len() / 2]).unwrap();
        let err = SmilesStream::open(&gz, None)
            .unwrap()
            .find_map(|r| r.err())
            .expect("a truncated file is an error")
            .to_string();
        assert!(!err.contains(":0:") && err.contains("t.smi.gz:"), "{err}");
    }
}
