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
/// `--lr`, `--lora-targets`, so the message names the flag. Other errors print their chain of
/// causes once each.
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
    // The chain of causes, outermost first, leaving out a cause whose text an outer message
    // already quotes (lipo's errors name their source in their own message).
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
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

#[cfg(test)]
mod tests {
    use super::error_message;

    #[test]
    fn a_cause_the_message_already_quotes_is_not_repeated() {
        let io = std::io::Error::other("disk on fire");
        let e = anyhow::Error::from(lipo::Error::io("/x/y.json", io));
        assert_eq!(error_message(&e), "/x/y.json: disk on fire");
        let e = e.context("reading the run");
        assert_eq!(
            error_message(&e),
            "reading the run: /x/y.json: disk on fire"
        );
    }
}
