//! Independent runs side by side: a study's (arm, seed) runs and an ablation's cells share
//! nothing but the data they read, so on a CPU several of them run at once, each on its own
//! share of the cores.
//!
//! Why: a small model at a small batch does not keep two cores busy (most of a step is
//! per-op overhead and synchronisation between the threads of each op). Measured with
//! `cargo xtask bench model --configs 64x16` on 2 cores: two single-threaded processes side by
//! side train 61 images/s together and attack (PGD-10) 9.7 images/s, where one process on both
//! cores trains 39 and attacks 4.9–6.9. Results do not depend on the split: every kernel gives
//! bit-identical values for any number of threads (dfr-model's `threads` test).
//!
//! On CUDA the runs go one at a time (one device); `jobs` overrides the choice.

use crate::error::Result;
use candle_core::Device;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

/// How many runs go side by side and how many threads each gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    /// Runs at once.
    pub jobs: usize,
    /// Threads of each run's pool.
    pub threads: usize,
}

impl Plan {
    /// The plan for `pending` runs on `device` with `threads` cores (the current pool's size:
    /// `RAYON_NUM_THREADS` or the number of cores): one run per core on the CPU, one at a time
    /// on CUDA, or `requested` runs (each with an equal share of the threads, at least one).
    ///
    /// ```
    /// use candle_core::Device;
    /// use dfr_study::jobs::Plan;
    /// assert_eq!(Plan::new(None, &Device::Cpu, 24, 2), Plan { jobs: 2, threads: 1 });
    /// assert_eq!(Plan::new(None, &Device::Cpu, 1, 8), Plan { jobs: 1, threads: 8 });
    /// assert_eq!(Plan::new(Some(2), &Device::Cpu, 24, 8), Plan { jobs: 2, threads: 4 });
    /// assert_eq!(Plan::new(Some(0), &Device::Cpu, 24, 8), Plan { jobs: 1, threads: 8 });
    /// let side_by_side = Plan::new(None, &Device::Cpu, 24, 2);
    /// assert_eq!(side_by_side.to_string(), "2 at a time (1 thread each)");
    /// assert!(!side_by_side.shows_progress());
    /// ```
    pub fn new(requested: Option<usize>, device: &Device, pending: usize, threads: usize) -> Plan {
        let threads = threads.max(1);
        let jobs = match requested {
            Some(j) => j,
            None if device.is_cpu() => threads,
            None => 1,
        };
        let jobs = jobs.min(pending).max(1);
        Plan {
            jobs,
            threads: (threads / jobs).max(1),
        }
    }
}

impl Plan {
    /// Whether a run may draw progress bars: not when runs go side by side (their bars would
    /// overwrite each other; the log, with a span per run, says enough).
    pub fn shows_progress(&self) -> bool {
        self.jobs == 1
    }
}

impl std::fmt::Display for Plan {
    /// `2 at a time (1 thread each)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = if self.threads == 1 { "" } else { "s" };
        write!(
            f,
            "{} at a time ({} thread{s} each)",
            self.jobs, self.threads
        )
    }
}

/// Runs `f(i)` for `i` in `0..n`, up to `plan.jobs` at a time (each job on its own pool of
/// `plan.threads` threads), taking the items in order; returns every item's outcome in
/// order, `None` for items never started. With `keep_going` false, the first error stops
/// new items from starting (the runs in progress finish, so nothing they did is lost).
pub fn run_all<T: Send>(
    n: usize,
    plan: Plan,
    keep_going: bool,
    f: impl Fn(usize) -> Result<T> + Sync,
) -> Vec<Option<Result<T>>> {
    if plan.jobs <= 1 {
        let mut out: Vec<Option<Result<T>>> = Vec::with_capacity(n);
        for i in 0..n {
            let r = f(i);
            let failed = r.is_err();
            out.push(Some(r));
            if failed && !keep_going {
                break;
            }
        }
        out.resize_with(n, || None);
        return out;
    }
    dfr_model::runtime::limit_elementwise_threads(plan.threads);
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let results: Mutex<Vec<Option<Result<T>>>> = Mutex::new((0..n).map(|_| None).collect());
    let work = || loop {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let i = next.fetch_add(1, Ordering::SeqCst);
        if i >= n {
            break;
        }
        let r = f(i);
        if r.is_err() && !keep_going {
            stop.store(true, Ordering::SeqCst);
        }
        results.lock().unwrap_or_else(|p| p.into_inner())[i] = Some(r);
    };
    std::thread::scope(|scope| {
        for _ in 0..plan.jobs {
            scope.spawn(|| {
                match rayon::ThreadPoolBuilder::new()
                    .num_threads(plan.threads)
                    .build()
                {
                    Ok(pool) => pool.install(work),
                    Err(e) => {
                        tracing::warn!("could not start a job's thread pool ({e}); running it on the job's thread");
                        work()
                    }
                }
            });
        }
    });
    results.into_inner().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StudyError;

    #[test]
    fn every_item_runs_once_in_order_and_each_job_has_its_threads() {
        for jobs in [1, 2, 3] {
            let plan = Plan { jobs, threads: 2 };
            let out = run_all(7, plan, false, |i| {
                let t = if jobs > 1 {
                    rayon::current_num_threads()
                } else {
                    2
                };
                Ok((i, t))
            });
            let got: Vec<(usize, usize)> = out.into_iter().map(|r| r.unwrap().unwrap()).collect();
            assert_eq!(
                got,
                (0..7).map(|i| (i, 2)).collect::<Vec<_>>(),
                "{jobs} jobs"
            );
        }
    }

    #[test]
    fn an_error_stops_new_items_unless_asked_to_keep_going() {
        let fail_at_2 = |i: usize| {
            if i == 2 {
                Err(StudyError::Invalid("boom".into()))
            } else {
                // Long enough for the failure to stop the other job before it takes many.
                std::thread::sleep(std::time::Duration::from_millis(20));
                Ok(i)
            }
        };
        for jobs in [1, 2] {
            let plan = Plan { jobs, threads: 1 };
            let out = run_all(40, plan, false, fail_at_2);
            assert!(matches!(out[2], Some(Err(_))));
            // Items already taken finish; most of the rest never start.
            assert!(out.iter().filter(|r| r.is_none()).count() >= 40 - 2 * jobs - 1);
            let all = run_all(40, plan, true, fail_at_2);
            assert!(all.iter().all(|r| r.is_some()));
            assert_eq!(all.iter().filter(|r| matches!(r, Some(Err(_)))).count(), 1);
        }
    }
}
