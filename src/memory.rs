//! Process memory as the kernel reports it (`/proc/self/status`): resident set size now and
//! its peak. On systems without `/proc` both are unknown (`None`).

/// Bytes of a `VmRSS`/`VmHWM`-style line of `/proc/self/status`.
fn status_field(field: &str) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/status").ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .and_then(|kb| kb.trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
}

/// Resident set size of this process now, in bytes.
pub fn current_rss() -> Option<u64> {
    status_field("VmRSS")
}

/// Peak resident set size of this process since it started, in bytes.
pub fn peak_rss() -> Option<u64> {
    status_field("VmHWM")
}

#[cfg(test)]
mod tests {
    #[test]
    fn peak_is_at_least_current_on_linux() {
        if let (Some(now), Some(peak)) = (super::current_rss(), super::peak_rss()) {
            assert!(now > 0 && peak >= now);
        }
    }
}
