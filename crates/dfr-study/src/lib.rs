//! Whole studies of deepfake-detector robustness: a list of arms (variants of one experiment)
//! × a list of seeds, each (arm, seed) trained, attacked and explained independently (cached,
//! resumable), then statistics over seeds (means with confidence intervals, paired
//! comparisons with exact sign-flip tests, one verdict rule), `summary.json`, tables, figures
//! and `report.md`; the α × r ablation ([`ablation`]); leave-one-source-out generalisation
//! ([`generalization`]).
//!
//! A study from your own binary:
//!
//! ```no_run
//! use dfr_study::{reproduce_tables, StudyOptions};
//! let out = reproduce_tables(&StudyOptions::default())?; // the embedded quick study
//! let primary = &out.summary.comparisons[0];
//! println!("{} − {} on {}: {:+.3}, p = {:?}", primary.b, primary.a, primary.metric,
//!          primary.mean_diff, primary.p_value);
//! # Ok::<(), dfr_study::StudyError>(())
//! ```
//!
//! Parsing and validating a study file does no work and names the key of any bad value:
//!
//! ```
//! let cfg = dfr_study::StudyConfig::load(None).unwrap(); // experiments/quick.toml
//! assert_eq!(cfg.arm_names(), ["baseline", "baseline-frozen", "gradreg", "gradreg-random"]);
//! assert!(cfg.seeds.len() >= 6);
//! let bad = "[[arms]]\nname = \"x\"\nstrategy = \"magic\"\n";
//! assert!(dfr_study::StudyConfig::parse(bad, "mine.toml").unwrap_err().to_string().contains("magic"));
//! ```

/// A polars column from a name and a vector (`col!("accuracy", vec![0.5])`).
macro_rules! col {
    ($name:expr, $values:expr $(,)?) => {
        dfr_report::polars::prelude::Column::new(
            dfr_report::polars::prelude::PlSmallStr::from(&*$name.to_string()),
            $values,
        )
    };
}

pub mod ablation;
pub mod arm;
pub mod cam;
pub mod config;
pub mod error;
pub mod generalization;
pub mod jobs;
pub mod published;
pub mod report;
pub mod run;
pub mod slurm;
pub mod study;
pub mod summary;
pub mod worst;

pub use arm::{default_arms, ArmSpec, ComparisonSpec};
pub use config::StudyConfig;
pub use error::{Result, StudyError};
pub use study::{load_study, reproduce_tables, Study, StudyOptions, StudyOutcome};
pub use summary::Summary;
