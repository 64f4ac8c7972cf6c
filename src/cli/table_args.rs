//! [`TableArgs`]: the table-reading flags shared by `lipo finetune`, `lipo compare-mlm` and
//! `lipo evaluate`.

use clap::Args;
use lipo::data::TableOptions;

#[derive(Args, Clone)]
pub(crate) struct TableArgs {
    /// Header of the SMILES column (default: the first header containing "smiles").
    #[arg(long)]
    smiles_col: Option<String>,
    /// Header of the label column (default: exp, label, y, logd, target or value).
    #[arg(long)]
    label_col: Option<String>,
    /// Skip bad rows (counted) instead of stopping at the first.
    #[arg(long)]
    skip_bad_rows: bool,
}

impl TableArgs {
    pub(crate) fn options(&self) -> TableOptions {
        TableOptions {
            smiles_col: self.smiles_col.clone(),
            label_col: self.label_col.clone(),
            skip_bad_rows: self.skip_bad_rows,
        }
    }
}
