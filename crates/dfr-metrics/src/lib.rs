//! Classification and robustness metrics for deepfake detection, on plain slices.
//!
//! Conventions:
//! - labels: 0 = real, 1 = fake (any unsigned integer type or `bool`, see [`Label`]);
//! - scores: `f32` or `f64` probability (or any monotone score) of class **fake**
//!   (see [`Score`]); computations are done in `f64`;
//! - hard decisions: `score >= threshold → fake` ([`predict`], default threshold
//!   [`DEFAULT_THRESHOLD`] = 0.5);
//! - confusion matrices: rows = true class, columns = predicted class.
//!
//! Bad input never panics: every function returns a typed [`MetricsError`] (length
//! mismatch, empty input, invalid label, non-finite score, single class where both are
//! needed, …).
//!
//! Direction of each metric: accuracy, precision, recall, F1, macro-F1, ROC-AUC, average
//! precision and Youden's J — higher is better; EER, FPR and FNR — lower is better. The
//! normalised ε-AUC ([`normalized_auc`]) has the direction of the metric it integrates.
//!
//! Threshold-free metrics (ROC curve, ROC-AUC, average precision, EER) follow
//! scikit-learn's definitions exactly; [`check_metrics_case`] checks them against
//! reference values.
//!
//! "Macro-F1" here always means the mean over both classes ([`binary_macro_f1`]); the F1
//! of the fake class alone is [`binary_f1`].

mod bootstrap;
mod classification;
mod confusion;
mod curve_auc;
mod error;
mod input;
mod paired;
mod parity;
mod precision_recall;
mod report;
mod roc;
mod stats;
mod threshold;
mod video;

pub use bootstrap::{
    bootstrap_accuracy, bootstrap_roc_auc, bootstrap_seeds_and_items, bootstrap_statistic,
    BootstrapConfig, ConfidenceInterval,
};
pub use classification::{
    accuracy, binary_f1, binary_macro_f1, macro_f1, macro_f1_from_matrix, per_class_scores,
    precision_recall_f1, ClassScores,
};
pub use confusion::{BinaryConfusion, ConfusionMatrix};
pub use curve_auc::{
    normalized_auc, normalized_auc_by_max_eps, normalized_auc_by_range, trapezoid, AucNormalization,
};
pub use error::{MetricsError, Result};
pub use input::{Label, Score};
pub use paired::{
    compare_paired, detectable_difference, min_sign_flip_p, sign_flip_test, wilcoxon_signed_rank,
    PairedComparison, SignFlip, Verdict, EXACT_SIGN_FLIP_MAX, SIGN_FLIP_DRAWS,
};
pub use parity::{
    check_metrics_case, metrics_case_path, ParityError, FLOAT_TOLERANCE, METRICS_CASE_FILE,
};
pub use precision_recall::{average_precision, precision_recall_curve, PrecisionRecallCurve};
pub use report::BinaryReport;
pub use roc::{
    eer, eer_point, eer_point_from_curve, roc_auc, roc_curve, roc_curve_with, EerPoint, RocCurve,
};
pub use stats::{mean_ci, mean_sd, standard_errors_apart, t_quantile, MeanCi};
pub use threshold::{
    best_macro_f1_threshold, eer_threshold, predict, youden_threshold, ThresholdChoice,
    ThresholdRule, DEFAULT_THRESHOLD,
};
pub use video::{video_scores, VideoScores};
