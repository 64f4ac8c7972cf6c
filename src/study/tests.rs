use super::*;

#[test]
fn a_stage_counts_the_time_of_calls_that_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let settings = serde_json::json!({"epochs": 3});
    let nap = || std::thread::sleep(std::time::Duration::from_millis(120));
    let silent = &mut crate::progress::Silent;
    let stopped = stage("t", dir.path(), &settings, 1.0, None, silent, |_| {
        nap();
        Err::<(), _>(Error::Cancelled("interrupted".into()))
    });
    assert!(stopped.is_err());
    let (_, t) = stage("t", dir.path(), &settings, 1.0, Some(1.0), silent, |_| {
        nap();
        Ok(())
    })
    .unwrap();
    // Both calls' time and the time of other processes.
    assert!(t.seconds >= 1.24 && t.seconds < 5.0, "{}", t.seconds);
    assert!(!t.reused);
    // Finished: reported as stored; other settings start from zero.
    let (_, again) = stage("t", dir.path(), &settings, 1.0, None, silent, |_| Ok(())).unwrap();
    assert!(again.reused);
    assert!(
        (again.seconds - t.seconds).abs() < 1e-9,
        "{} vs {}",
        again.seconds,
        t.seconds
    );
    let (_, other) = stage(
        "t",
        dir.path(),
        &serde_json::json!({"epochs": 4}),
        1.0,
        None,
        silent,
        |_| Ok(()),
    )
    .unwrap();
    assert!(other.seconds < 0.1, "{}", other.seconds);
}
