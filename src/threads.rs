//! How many CPU threads libtorch uses while training: a fixed count the user chose, or an
//! adaptive count that follows the machine's load.
//!
//! libtorch's OpenMP workers spin at every barrier. When another process holds one of the
//! cores, a two-thread step waits for the descheduled worker at each of its hundreds of
//! parallel regions, and throughput collapses (17× slower than one thread was measured on a
//! 2-core machine). A process cannot change OpenMP's wait policy once libtorch is loaded, but
//! it can change the thread count between steps. So by default training runs under a
//! [`Governor`]: it times short windows of steps at each candidate thread count, keeps the
//! fastest, and probes the others again every [`REPROBE_SECONDS`] or as soon as the current
//! count slows down by half.

use std::sync::Mutex;
use std::time::Instant;

/// The process-wide policy: libtorch's thread count is a process-wide setting too.
static POLICY: Mutex<Policy> = Mutex::new(Policy::Unset);

/// Seconds of steps that make one timing window.
pub const WINDOW_SECONDS: f64 = 1.0;
/// Seconds between two rounds of probing the other thread counts.
pub const REPROBE_SECONDS: f64 = 60.0;

/// How training chooses its CPU thread count.
///
/// Float rounding in libtorch's parallel kernels depends on the thread count, so only a fixed
/// count makes a resumed run repeat an uninterrupted one bit for bit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// Nobody chose: training keeps libtorch's current count (the library's default; the
    /// command line and the C ABI choose).
    Unset,
    /// Exactly this many threads (the user asked for it, e.g. `--threads 1`).
    Fixed(usize),
    /// Up to `max` threads (0: all cores), chosen by measured throughput while training.
    Adaptive {
        /// The most threads to use; 0 means the machine's cores.
        max: usize,
    },
}

impl Policy {
    /// The largest thread count the policy allows.
    pub fn max_threads(self) -> usize {
        match self {
            Policy::Fixed(n) => n.max(1),
            Policy::Unset => tch::get_num_threads().max(1) as usize,
            Policy::Adaptive { max: 0 } => cores(),
            Policy::Adaptive { max } => max,
        }
    }

    /// The thread counts a governor tries, largest first.
    pub fn candidates(self) -> Vec<usize> {
        let max = self.max_threads();
        match self {
            Policy::Fixed(_) | Policy::Unset => vec![max],
            Policy::Adaptive { .. } => {
                let mut c = vec![max];
                if max >= 4 {
                    c.push(max / 2);
                }
                if max > 1 {
                    c.push(1);
                }
                c
            }
        }
    }
}

/// The machine's cores (1 when unknown).
pub fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// Sets the process-wide policy and libtorch's thread count to its largest allowed value.
pub fn set_policy(policy: Policy) {
    *POLICY.lock().unwrap_or_else(|e| e.into_inner()) = policy;
    if policy != Policy::Unset {
        tch::set_num_threads(policy.max_threads() as i32);
    }
}

/// The process-wide policy ([`Policy::Unset`] until [`set_policy`]).
pub fn policy() -> Policy {
    *POLICY.lock().unwrap_or_else(|e| e.into_inner())
}

/// A batch's work as a governor counts it: its padded token count.
pub fn padded_tokens<S: AsRef<[u32]>>(seqs: &[S]) -> f64 {
    let longest = seqs.iter().map(|s| s.as_ref().len()).max().unwrap_or(0);
    (seqs.len() * longest) as f64
}

/// Where a governor is in its cycle.
#[derive(Debug)]
enum Phase {
    /// Measuring one window at each of these candidates (indices), in order.
    Probing(Vec<usize>),
    /// Running at the fastest count measured, since this instant.
    Settled(Instant),
}

/// Chooses libtorch's thread count for a training loop from the throughput of its own steps.
///
/// The loop times each step and calls [`Governor::record`] with the step's work (e.g. padded
/// tokens) and seconds; time between steps (evaluation, checkpoints) does not count.
#[derive(Debug)]
pub struct Governor {
    candidates: Vec<usize>,
    /// Index of the count in use.
    current: usize,
    /// Last measured throughput (work per second) of each candidate.
    rates: Vec<Option<f64>>,
    phase: Phase,
    /// Work and seconds of the open window.
    window: (f64, f64),
}

impl Governor {
    /// A governor under the process-wide [`policy`], for training on a GPU (`cuda`: it leaves
    /// the thread count alone) or the CPU.
    pub fn new(cuda: bool) -> Governor {
        let policy = if cuda {
            Policy::Fixed(tch::get_num_threads().max(1) as usize)
        } else {
            policy()
        };
        let g = Governor::with_candidates(policy.candidates());
        tch::set_num_threads(g.threads() as i32);
        g
    }

    fn with_candidates(candidates: Vec<usize>) -> Governor {
        let n = candidates.len();
        Governor {
            current: 0,
            rates: vec![None; n],
            phase: Phase::Probing((1..n).collect()),
            window: (0.0, 0.0),
            candidates,
        }
    }

    /// The thread count in use.
    pub fn threads(&self) -> usize {
        self.candidates[self.current]
    }

    /// Whether this governor ever changes the count.
    pub fn is_adaptive(&self) -> bool {
        self.candidates.len() > 1
    }

    /// Records one step of `work` units that took `seconds`; when that closes a window of
    /// [`WINDOW_SECONDS`], moves on to the next count to probe, settles on the fastest, or
    /// starts a new round of probing (when one is due, or the current count slowed to half
    /// its settled rate because the machine's load changed).
    pub fn record(&mut self, work: f64, seconds: f64) {
        if !self.is_adaptive() {
            return;
        }
        self.window.0 += work;
        self.window.1 += seconds;
        if self.window.1 < WINDOW_SECONDS {
            return;
        }
        let rate = self.window.0 / self.window.1;
        self.window = (0.0, 0.0);
        let before = self.rates[self.current].replace(rate);
        match &mut self.phase {
            Phase::Probing(queue) => {
                if queue.is_empty() {
                    let best = self.fastest();
                    self.phase = Phase::Settled(Instant::now());
                    self.switch(best);
                } else {
                    let next = queue.remove(0);
                    self.switch(next);
                }
            }
            Phase::Settled(since) => {
                let slowed = before.is_some_and(|b| rate < 0.5 * b);
                if slowed || since.elapsed().as_secs_f64() >= REPROBE_SECONDS {
                    let mut others: Vec<usize> = (0..self.candidates.len())
                        .filter(|&i| i != self.current)
                        .collect();
                    let next = others.remove(0);
                    self.phase = Phase::Probing(others);
                    self.switch(next);
                }
            }
        }
    }

    /// The candidate with the highest measured rate.
    fn fastest(&self) -> usize {
        (0..self.candidates.len())
            .max_by(|&a, &b| {
                let r = |i: usize| self.rates[i].unwrap_or(0.0);
                r(a).total_cmp(&r(b))
            })
            .unwrap_or(0)
    }

    fn switch(&mut self, index: usize) {
        tracing::debug!(
            "thread governor: rates {:?}, {} → {} threads",
            self.rates,
            self.threads(),
            self.candidates[index]
        );
        if index != self.current {
            self.current = index;
            tch::set_num_threads(self.candidates[index] as i32);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `g` one window at the rate `rate_of(threads)`.
    fn window(g: &mut Governor, rate_of: impl Fn(usize) -> f64) {
        let r = rate_of(g.threads());
        g.record(r * WINDOW_SECONDS, WINDOW_SECONDS);
    }

    #[test]
    fn settles_on_the_fastest_count_and_follows_a_slowdown() {
        let mut g = Governor::with_candidates(vec![2, 1]);
        assert_eq!(g.threads(), 2);
        // Idle machine: two threads are 1.6× faster.
        let idle = |t: usize| if t == 2 { 160.0 } else { 100.0 };
        window(&mut g, idle);
        assert_eq!(g.threads(), 1, "probes the other count next");
        window(&mut g, idle);
        assert_eq!(g.threads(), 2, "settles on the faster count");
        window(&mut g, idle);
        assert_eq!(g.threads(), 2, "stays while nothing changes");
        // Another process takes a core: two threads collapse.
        let busy = |t: usize| if t == 2 { 6.0 } else { 95.0 };
        window(&mut g, busy);
        assert_eq!(g.threads(), 1, "a halved rate starts a new round");
        window(&mut g, busy);
        assert_eq!(g.threads(), 1, "settles on one thread");
        for _ in 0..5 {
            window(&mut g, busy);
            assert_eq!(g.threads(), 1);
        }
    }

    #[test]
    fn a_window_needs_enough_seconds() {
        let mut g = Governor::with_candidates(vec![2, 1]);
        g.record(10.0, WINDOW_SECONDS / 4.0);
        g.record(10.0, WINDOW_SECONDS / 4.0);
        assert_eq!(g.threads(), 2);
        g.record(10.0, WINDOW_SECONDS / 2.0);
        assert_eq!(g.threads(), 1);
    }

    #[test]
    fn fixed_policies_never_change() {
        assert_eq!(Policy::Fixed(3).candidates(), vec![3]);
        assert_eq!(Policy::Adaptive { max: 2 }.candidates(), vec![2, 1]);
        assert_eq!(Policy::Adaptive { max: 8 }.candidates(), vec![8, 4, 1]);
        assert_eq!(Policy::Adaptive { max: 1 }.candidates(), vec![1]);
        let mut g = Governor::with_candidates(vec![3]);
        window(&mut g, |_| 1.0);
        assert_eq!(g.threads(), 3);
        assert!(!g.is_adaptive());
    }
}
