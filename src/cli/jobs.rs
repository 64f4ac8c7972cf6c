//! `lipo study --jobs N`: the study's seeds run in N child processes at once.
//!
//! The jobs and what they wait for are planned in [`lipo::study::jobs`]. Each runs as
//! `lipo compare-mlm | compare-influence | compare-peft --config STAGE/jobs/seedK.json --out
//! STAGE --summary-dir STAGE/jobs/seedK`, which writes its runs exactly where the study keeps
//! them, and its one-seed table and figures in its own folder (so an interrupted study never
//! leaves one-seed tables at the stage level). When all jobs have finished, the study runs
//! in this process as usual and finds every run done: it only gathers the tables, exports the
//! best model and writes the report. On a small machine, N processes with fewer threads each
//! keep the cores busier than one process with all of them (the fine-tunes use batch 16).

use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use lipo::progress::{Event, Monitor};

use lipo::study::jobs::{job_config, plan, share_runs, Job};
use lipo::study::{self, files, StudyConfig};

/// Writes the configuration of `job`; returns its path.
fn write_config(cfg: &StudyConfig, out: &Path, job: &Job) -> Result<PathBuf> {
    let path = out
        .join(job.stage)
        .join("jobs")
        .join(format!("seed{}.json", job.seed));
    lipo::fsutil::write_json(&path, &job_config(cfg, job)?)?;
    Ok(path)
}

/// `STAGE/jobs/seconds.json`: the wall time a stage's jobs have taken over every call of
/// `lipo study --jobs`, interrupted ones included, for the job configurations it names.
#[derive(serde::Serialize, serde::Deserialize)]
struct StageSeconds {
    configs: Vec<serde_json::Value>,
    seconds: f64,
}

fn seconds_path(out: &Path, stage: &str) -> PathBuf {
    out.join(stage).join("jobs").join("seconds.json")
}

/// Adds this call's span of each stage to its stored total (restarted when the stage's job
/// configurations changed) and returns the totals by stage.
fn add_spans(
    cfg: &StudyConfig,
    out: &Path,
    plan: &[Job],
    spans: &BTreeMap<&str, (Instant, Instant)>,
) -> Result<Vec<(String, f64)>> {
    let mut totals = Vec::new();
    for &stage in files::STAGES.iter().chain(&files::SEARCH_STAGES) {
        let configs = plan
            .iter()
            .filter(|j| j.stage == stage)
            .map(|j| job_config(cfg, j))
            .collect::<lipo::Result<Vec<_>>>()?;
        if configs.is_empty() {
            continue;
        }
        let path = seconds_path(out, stage);
        let before = path
            .is_file()
            .then(|| lipo::fsutil::read_json::<StageSeconds>(&path).ok())
            .flatten()
            .filter(|r| r.configs == configs)
            .map_or(0.0, |r| r.seconds);
        let now = spans
            .get(stage)
            .map_or(0.0, |(a, b)| b.duration_since(*a).as_secs_f64());
        let seconds = before + now;
        lipo::fsutil::write_json(&path, &StageSeconds { configs, seconds })?;
        totals.push((stage.to_string(), seconds));
    }
    Ok(totals)
}

/// A job that runs: its index in the plan, the process, its log and when it started.
type Running = (usize, Child, PathBuf, Instant);

/// Collects the jobs that have ended: marks them done (and says so) or records the first
/// failure; stage spans are extended to now.
fn reap<'p>(
    plan: &'p [Job],
    running: &mut Vec<Running>,
    spans: &mut BTreeMap<&'p str, (Instant, Instant)>,
    done: &mut [bool],
    failure: &mut Option<String>,
    monitor: &mut dyn Monitor,
) -> Result<()> {
    let mut k = 0;
    while k < running.len() {
        let (i, child, log, t0) = &mut running[k];
        let Some(status) = child
            .try_wait()
            .with_context(|| format!("waiting for the job logged in {}", log.display()))?
        else {
            k += 1;
            continue;
        };
        let job = &plan[*i];
        let took = t0.elapsed();
        let span = spans.entry(job.stage).or_insert((*t0, *t0));
        span.1 = Instant::now();
        if status.success() {
            done[*i] = true;
            monitor.event(&Event::Message {
                text: format!(
                    "jobs: {} seed {} finished in {}",
                    job.stage,
                    job.seed,
                    study::estimate::human_seconds(took.as_secs_f64())
                ),
            });
        } else if failure.is_none() {
            *failure = Some(format!(
                "{} seed {} stopped ({status}); its messages are in {}",
                job.stage,
                job.seed,
                log.display()
            ));
        }
        running.swap_remove(k);
    }
    Ok(())
}

/// The periodic line naming the running jobs and how many wait.
fn running_status(plan: &[Job], running: &[Running], left: usize) -> String {
    let list: Vec<String> = running
        .iter()
        .map(|(i, _, _, t0)| {
            format!(
                "{} seed {} ({})",
                plan[*i].stage,
                plan[*i].seed,
                study::estimate::human_seconds(t0.elapsed().as_secs_f64())
            )
        })
        .collect();
    format!("jobs: running {}; {left} waiting", list.join(", "))
}

/// What a child needs besides its job.
pub struct ChildSettings<'a> {
    /// The `lipo` executable.
    pub exe: &'a Path,
    /// Tensor threads of each child.
    pub threads: i32,
    /// `--device` of each child.
    pub device: &'a str,
}

fn launch(cfg: &StudyConfig, out: &Path, job: &Job, s: &ChildSettings) -> Result<(Child, PathBuf)> {
    share_runs(cfg, out, job)?;
    let config = write_config(cfg, out, job)?;
    let log = config.with_extension("log");
    // Appended to, so the messages of an earlier, interrupted attempt stay readable.
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .with_context(|| format!("opening {}", log.display()))?;
    std::io::Write::write_all(
        &mut file,
        format!(
            "=== lipo {} --config {} (started {} s after the Unix epoch)\n",
            job.command,
            config.display(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0)
        )
        .as_bytes(),
    )
    .with_context(|| format!("writing {}", log.display()))?;
    let err = file
        .try_clone()
        .with_context(|| format!("opening {}", log.display()))?;
    // Its own process group: a Ctrl-C at the terminal reaches only this process, which
    // passes one interrupt on to each child (see `run`).
    let child = Command::new(s.exe)
        .process_group(0)
        .arg("--threads")
        .arg(s.threads.to_string())
        .arg(job.command)
        .arg("--config")
        .arg(&config)
        .arg("--out")
        .arg(out.join(job.stage))
        .arg("--summary-dir")
        .arg(config.with_extension(""))
        .arg("--device")
        .arg(s.device)
        .stdin(Stdio::null())
        .stdout(file)
        .stderr(err)
        .spawn()
        .with_context(|| format!("starting {}", s.exe.display()))?;
    Ok((child, log))
}

/// Asks `child` to stop at its next safe point, as Ctrl-C would.
fn interrupt(child: &Child) {
    if let Ok(pid) = libc::pid_t::try_from(child.id()) {
        // SAFETY: kill(2) with a live child's pid and a standard signal has no memory effects.
        unsafe {
            libc::kill(pid, libc::SIGINT);
        }
    }
}

/// Runs every job of `cfg`, `jobs` at a time, and returns the wall time each stage's jobs
/// spanned (first start to last end), summed over this and earlier calls that ran the same
/// jobs (`STAGE/jobs/seconds.json`), by stage folder name. Jobs whose runs are
/// finished already end at once (their runs are reused). A failed job stops new launches;
/// the error names its log. On Ctrl-C (or SIGINT to this process) each running child is
/// interrupted once: it stops at its next safe point, and the same command resumes.
pub fn run(
    cfg: &StudyConfig,
    out: &Path,
    jobs: usize,
    settings: &ChildSettings,
    monitor: &mut super::monitor::CliMonitor,
) -> Result<Vec<(String, f64)>> {
    study::prepare(cfg, out)?;
    let plan = plan(cfg);
    let say = |m: &mut dyn Monitor, text: String| m.event(&Event::Message { text });
    say(
        monitor,
        format!(
            "jobs: {} per-seed jobs, {jobs} at a time, {} tensor thread(s) each; logs in {}/STAGE/jobs/",
            plan.len(),
            settings.threads,
            out.display()
        ),
    );
    let mut done = vec![false; plan.len()];
    let mut started = vec![false; plan.len()];
    let mut running: Vec<Running> = Vec::new();
    let mut spans: BTreeMap<&str, (Instant, Instant)> = BTreeMap::new();
    let mut failure: Option<String> = None;
    let mut stop = false;
    let mut last_status = Instant::now();
    loop {
        reap(
            &plan,
            &mut running,
            &mut spans,
            &mut done,
            &mut failure,
            monitor,
        )?;
        while !stop && failure.is_none() && running.len() < jobs {
            let next =
                (0..plan.len()).find(|&i| !started[i] && plan[i].after.is_none_or(|a| done[a]));
            let Some(i) = next else { break };
            let job = &plan[i];
            let (child, log) = launch(cfg, out, job, settings)?;
            started[i] = true;
            let now = Instant::now();
            spans.entry(job.stage).or_insert((now, now));
            say(
                monitor,
                format!(
                    "jobs: {} seed {} started (lipo {}; log {})",
                    job.stage,
                    job.seed,
                    job.command,
                    log.display()
                ),
            );
            running.push((i, child, log, now));
        }
        if running.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
        if last_status.elapsed() >= Duration::from_secs(600) {
            last_status = Instant::now();
            let left = started.iter().filter(|s| !**s).count();
            say(monitor, running_status(&plan, &running, left));
        }
        if !stop && monitor.stopped() {
            stop = true;
            for (_, child, _, _) in &running {
                interrupt(child);
            }
        }
    }
    let totals = add_spans(cfg, out, &plan, &spans)?;
    if let Some(f) = failure {
        bail!("{f}; run the same command to resume");
    }
    if stop || done.iter().any(|d| !d) {
        bail!("stopped before every job finished; run the same command to resume");
    }
    Ok(totals)
}
