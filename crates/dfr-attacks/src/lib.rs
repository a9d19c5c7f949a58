//! L∞ adversarial attacks and robust evaluation of real/fake detectors on candle.
//!
//! - [`Classifier`]: what an attack needs from a model (images in [0, 1] → eval-mode
//!   logits, normalisation inside), implemented for [`dfr_model::EfficientNet`] and
//!   any closure ([`FnClassifier`]).
//! - [`run_attack`]: FGSM, PGD, MI-FGSM (torchattacks 3.5 semantics) and APGD-CE
//!   (Croce & Hein 2020 reference implementation), untargeted or targeted, CE loss
//!   optionally class-weighted, seeded random starts. Parameters are frozen during an
//!   attack so that the backward pass computes the input gradient only.
//! - [`evaluate_samples`] / [`evaluate_loader`] / [`evaluate_batches`]: robust
//!   evaluation over a list of ε (clean ε = 0 included) with accuracy, macro-F1,
//!   ROC-AUC, confusion matrix, per-source accuracy, perturbation norms, per-sample
//!   worst case over attacks, and [`SanityCheck`]s; a [`RobustReport`] prints as a
//!   table and writes JSON / CSV; adversarial examples can be saved losslessly
//!   (f32 safetensors, see [`io`]).

pub mod attack;
pub mod classifier;
mod display;
pub mod error;
pub mod eval;
pub mod io;
pub mod sanity;

pub use attack::{
    check_eps, perturbation_norms, run_attack, AttackKind, AttackOutput, AttackParams, Goal,
    GradStats,
};
pub use classifier::{Classifier, FnClassifier, FrozenGuard};
pub use error::{AttackError, Result};
pub use eval::{
    check_detector_meta, compute_metrics, evaluate_batches, evaluate_loader, evaluate_samples,
    load_detector, parse_attacks, AttackResult, EpsResult, EvalBatch, Metrics, RobustEvalConfig,
    RobustReport, SourceAccuracy, WorstCaseResult,
};
pub use sanity::SanityCheck;
