//! Sub-command modules of the `lipo` binary.

pub mod bench;
pub mod embed;
pub mod enumerate;
pub mod evaluate;
pub mod export;
pub mod finetune;
pub mod influence;
pub mod jobs;
pub mod mlm;
pub mod monitor;
pub mod output;
pub mod peft;
pub mod predict;
pub mod study;
pub mod table2;
pub mod table_args;
