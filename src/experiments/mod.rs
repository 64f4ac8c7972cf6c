//! The study's comparison tables (Table 1: [`table1`], Table 2: [`table2`]), each run over several seeds and summarised as mean ± sd.

pub mod summary;
#[cfg(feature = "train")]
pub mod table1;
#[cfg(feature = "train")]
pub mod table2;
