//! The table reader on arbitrary bytes, as a labelled CSV, a TSV and a SMILES list: never a
//! panic; every row has a line number at or after the previous row's.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lipo::data::{read_table, TableOptions};
use lipo::smiles_stream::{Columns, SmilesStream};
use lipo::tokenizer::SmilesTokenizer;
use std::sync::OnceLock;

static TOKENIZER: OnceLock<SmilesTokenizer> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().unwrap();
    let t = TOKENIZER.get_or_init(SmilesTokenizer::molformer);
    for name in ["t.csv", "t.tsv", "t.smi"] {
        let path = dir.path().join(name);
        std::fs::write(&path, data).unwrap();
        let labelled = name != "t.smi";
        if let Ok(stream) = SmilesStream::open_columns(
            &path,
            Columns {
                labels: labelled,
                default_labels: &["exp", "label"],
                ..Columns::default()
            },
        ) {
            let mut last = 0;
            for row in stream {
                let Ok(row) = row else { break };
                assert!(row.line > last, "line {} after {last}", row.line);
                assert!(row.lines >= 1);
                last = row.line + row.lines - 1;
            }
        }
        let opts = TableOptions {
            skip_bad_rows: true,
            ..TableOptions::default()
        };
        let _ = read_table(&path, t, &opts, labelled);
    }
});
