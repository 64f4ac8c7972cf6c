//! The study's comparison tables, each run over several seeds and summarised as mean ± sd.

pub mod summary;
#[cfg(feature = "train")]
pub mod table1;
