//! Sub-command modules of the `lipo` binary. The inference-only build (`--no-default-features
//! --features infer`) has only `predict` and the light front that hands every other command to
//! the full binary ([`front`]).

#[cfg(feature = "train")]
pub mod bench;
#[cfg(feature = "train")]
pub mod embed;
#[cfg(feature = "train")]
pub mod enumerate;
#[cfg(feature = "train")]
pub mod evaluate;
#[cfg(feature = "train")]
pub mod explain;
#[cfg(feature = "train")]
pub mod export;
#[cfg(feature = "train")]
pub mod finetune;
#[cfg(not(feature = "train"))]
pub mod front;
#[cfg(feature = "train")]
pub mod full;
#[cfg(feature = "train")]
pub mod influence;
#[cfg(feature = "train")]
pub mod jobs;
#[cfg(feature = "train")]
pub mod mlm;
#[cfg(feature = "train")]
pub mod monitor;
pub mod output;
#[cfg(feature = "train")]
pub mod peft;
pub mod predict;
#[cfg(feature = "train")]
pub mod study;
#[cfg(feature = "train")]
pub mod table2;
#[cfg(feature = "train")]
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

/// Log lines (tracing) on standard error, filtered by `LIPO_LOG` (default: warn).
pub fn init_logging() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("LIPO_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
}
