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

/// The message of a failed command. The library names the setting a bad value belongs to as
/// run.json spells it (`lr`, `lora_targets`); on the command line that setting is the flag
/// `--lr`, `--lora-targets`, so the message names the flag.
pub fn error_message(e: &anyhow::Error) -> String {
    if let Some(lipo::Error::InvalidParameter { name, reason }) = e.downcast_ref::<lipo::Error>() {
        let setting = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if setting {
            // Context added around the library's error (outermost first) keeps its place.
            let mut parts: Vec<String> = e
                .chain()
                .take_while(|c| c.downcast_ref::<lipo::Error>().is_none())
                .map(|c| c.to_string())
                .collect();
            parts.push(format!(
                "invalid value for --{}: {reason}",
                name.replace('_', "-")
            ));
            return parts.join(": ");
        }
    }
    format!("{e:#}")
}
