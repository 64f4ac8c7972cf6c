//! Sub-command modules of the `lipo` binary.

pub mod enumerate;
pub mod influence;
pub mod jobs;
pub mod peft;
pub mod study;
pub mod table2;
