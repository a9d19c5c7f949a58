//! L∞ adversarial attacks and robust evaluation of real/fake detectors on candle.
//!
//! - [`Classifier`]: what an attack needs from a model (images in [0, 1] → eval-mode
//!   logits, normalisation inside), implemented for [`dfr_model::EfficientNet`] and
//!   any closure ([`FnClassifier`]).
//! - [`run_attack`] ([`attack`]): FGSM, PGD, MI-FGSM (torchattacks 3.5 semantics) and
//!   APGD-CE (Croce & Hein 2020 reference implementation), untargeted or targeted, CE
//!   loss optionally class-weighted, seeded random starts. Parameters are frozen during
//!   an attack so that the backward pass computes the input gradient only.
//! - [`evaluate_samples`] / [`evaluate_loader`] / [`evaluate_batches`] ([`eval`]):
//!   robust evaluation ([`RobustEvalConfig`]) over a list of ε (clean ε = 0 included)
//!   with accuracy, macro-F1, ROC-AUC, confusion matrix, per-source accuracy,
//!   perturbation norms, per-sample worst case over attacks, and [`SanityCheck`]s; a
//!   [`RobustReport`] prints as a table and writes JSON / CSV; adversarial examples can
//!   be saved losslessly (f32 safetensors, [`adversarial`]).
//!
//! Modules, each importing only those listed before it: `error`, [`classifier`],
//! [`attack`], [`config`], [`batch`], `collect`, [`sanity`], [`report`],
//! [`adversarial`], [`eval`] (checked by the `module_dag` test).

pub mod adversarial;
pub mod attack;
pub mod batch;
pub mod classifier;
mod collect;
pub mod config;
pub mod error;
pub mod eval;
pub mod report;
pub mod sanity;

pub use adversarial::{read_saved_batch, AdversarialWriter, BatchToSave, SavedFile};
pub use attack::{
    check_eps, continue_pgd, perturbation_norms, run_attack, run_attack_grid, AttackKind,
    AttackOutput, AttackParams, Goal, GradStats, Schedule,
};
pub use batch::EvalBatch;
pub use classifier::{Classifier, FnClassifier};
pub use config::{parse_attacks, RobustEvalConfig};
pub use error::{AttackError, Result};
pub use eval::{evaluate_batches, evaluate_loader, evaluate_samples};
pub use report::{
    compute_metrics, AttackResult, EpsResult, Metrics, PerSample, RobustReport, SourceAccuracy,
    WorstCaseResult,
};
pub use sanity::SanityCheck;
