//! The study cut into per-seed jobs (`lipo study --jobs N` runs them as child processes).
//!
//! Every seed of every table is one job: a stage's comparison (`compare-mlm`,
//! `compare-influence`, `compare-peft`) with the stage's configuration restricted to that
//! seed, writing its runs where the study keeps them. A seed's Table 2 and Table 3
//! (regression) jobs wait for its Table 1 job, whose pre-trained run they share; a seed's
//! learning-rate search jobs wait for its Table 3 job, whose full fine-tune they share.

use std::path::Path;

use super::{files, share_table2_run, share_table3_run, StudyConfig};
use crate::error::Result;

/// One job: a stage's comparison for one seed.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    /// Stage folder name ([`files::STAGES`] or [`files::SEARCH_STAGES`]).
    pub stage: &'static str,
    /// The seed.
    pub seed: u64,
    /// The `lipo` sub-command that runs it.
    pub command: &'static str,
    /// Index in the plan of the job it waits for.
    pub after: Option<usize>,
}

/// The jobs of `cfg`, in launch order (a job only ever waits for an earlier one).
pub fn plan(cfg: &StudyConfig) -> Vec<Job> {
    let [s1, s2, s3, s4, _] = files::STAGES;
    let [r, c] = files::SEARCH_STAGES;
    let n = cfg.seeds.len();
    let mut stages = vec![
        (s1, "compare-mlm", None),
        (s2, "compare-influence", Some(0)),
        (s3, "compare-peft", Some(0)),
        (s4, "compare-peft", None),
    ];
    if !cfg.peft_lr_search.is_empty() {
        stages.push((r, "compare-peft", Some(2)));
        stages.push((c, "compare-peft", Some(3)));
    }
    let mut jobs = Vec::new();
    for (stage, command, waits_for) in stages {
        for (k, &seed) in cfg.seeds.iter().enumerate() {
            jobs.push(Job {
                stage,
                seed,
                command,
                after: waits_for.map(|s: usize| s * n + k),
            });
        }
    }
    jobs
}

/// The configuration of `job`: its stage's, restricted to its seed.
pub fn job_config(cfg: &StudyConfig, job: &Job) -> Result<serde_json::Value> {
    let [s1, s2, s3, s4, _] = files::STAGES;
    let [r, c] = files::SEARCH_STAGES;
    let seeds = vec![job.seed];
    let value = if job.stage == s1 {
        serde_json::to_value(super::table1::Table1Config {
            seeds,
            ..cfg.table1()
        })
    } else if job.stage == s2 {
        serde_json::to_value(super::table2::Table2Config {
            seeds,
            ..cfg.table2()
        })
    } else {
        let base = if job.stage == s3 || job.stage == r {
            cfg.table3_regression()
        } else {
            cfg.table3_classification()
        };
        let base = if job.stage == r || job.stage == c {
            cfg.with_search(base)
                .unwrap_or_else(|| unreachable!("planned without a search"))
        } else {
            debug_assert!(job.stage == s4 || job.stage == s3);
            base
        };
        serde_json::to_value(super::table3::CompareConfig { seeds, ..base })
    };
    value.map_err(|e| crate::error::Error::Training(format!("job configuration: {e}")))
}

/// Before `job` starts: copies the finished runs it shares with the job it waited for into
/// its stage (Table 1's pre-trained run as Table 2's run without external data and Table 3's
/// full fine-tune; Table 3's full fine-tune as the search's).
pub fn share_runs(cfg: &StudyConfig, out: &Path, job: &Job) -> Result<()> {
    let [_, s2, s3, s4, _] = files::STAGES;
    if job.stage == s2 {
        share_table2_run(cfg, out, job.seed)?;
    } else if job.stage == s3 || job.stage == s4 {
        share_table3_run(cfg, out, job.stage, job.seed)?;
    } else if files::SEARCH_STAGES.contains(&job.stage) {
        super::share_search_full_run(cfg, out, job.stage, job.seed)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_wait_for_the_runs_they_share() {
        let mut cfg = StudyConfig::full("d.csv".into(), "e.csv".into(), "m".into());
        let p = plan(&cfg);
        assert_eq!(p.len(), 6 * 3);
        for (i, j) in p.iter().enumerate() {
            if let Some(a) = j.after {
                assert!(a < i);
                assert_eq!(p[a].seed, j.seed);
            }
        }
        let search = p
            .iter()
            .find(|j| j.stage == "table3-regression-search")
            .unwrap();
        assert_eq!(p[search.after.unwrap()].stage, "table3-regression");
        let v = job_config(&cfg, search).unwrap();
        assert_eq!(v["seeds"], serde_json::json!([search.seed]));
        assert!(v["lr_search"].as_array().is_some_and(|a| !a.is_empty()));
        cfg.peft_lr_search.clear();
        assert_eq!(plan(&cfg).len(), 4 * 3);
    }
}
