//! Training of real/fake detectors: the `baseline` strategy (class-weighted cross-entropy) and
//! the `gradreg` strategy (gradient regularisation of shallow feature statistics with the
//! Perturbation Injection Module of Guan et al., TIFS 2024).
//!
//! * [`config`] — the TOML experiment file (plain serde structs with defaults, `--set`
//!   overrides, validation before any work).
//! * [`pim`] — the PIM step, exactly as `../shared/fixtures/README.md` states.
//! * [`adam`] — Adam with checkpointable moments.
//! * [`state`] — atomic resume checkpoints (weights, BN statistics, Adam, position, early
//!   stopping).
//! * [`trainer`] — the loop: deterministic batches, per-epoch metrics log, early stopping on
//!   validation macro-F1, best/last checkpoints, kill-safe resume.
//! * [`evaluate`] — eval-mode scoring of a split.

pub mod adam;
pub mod checkpoint;
pub mod config;
pub mod error;
pub mod evaluate;
pub mod parity;
pub mod pim;
pub mod state;
pub mod trainer;

pub use checkpoint::TrainedCheckpoint;
pub use config::{ExperimentConfig, Strategy};
pub use error::{Result, TrainError};
pub use trainer::{train, TrainOutcome};
