//! Parity against scikit-learn reference values (`metrics_case.json` of the shared
//! reference vectors), callable from tests and from the project's parity runner.

use std::path::{Path, PathBuf};

use serde_json::Value;
use thiserror::Error;

use crate::classification::{accuracy, binary_macro_f1};
use crate::confusion::BinaryConfusion;
use crate::curve_auc::{normalized_auc_by_max_eps, normalized_auc_by_range};
use crate::error::MetricsError;
use crate::precision_recall::average_precision;
use crate::roc::{eer, roc_auc};
use crate::threshold::{predict, DEFAULT_THRESHOLD};

/// File name of the metrics case inside a reference-vector directory.
pub const METRICS_CASE_FILE: &str = "metrics_case.json";

/// Absolute tolerance for floating-point metrics (inputs are identical doubles; only
/// summation order differs from scikit-learn).
pub const FLOAT_TOLERANCE: f64 = 1e-9;

/// Path of `metrics_case.json` in [`dfr_parity::fixtures_dir`].
pub fn metrics_case_path() -> PathBuf {
    dfr_parity::fixtures_dir().join(METRICS_CASE_FILE)
}

pub use dfr_parity::Check;

/// Why a parity case could not be evaluated (a failed comparison is not an error: see
/// [`Check::passed`]).
#[derive(Debug, Error)]
pub enum ParityError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid JSON.
    #[error("cannot parse {path}: {source}")]
    Json {
        /// The file.
        path: PathBuf,
        /// The parse error.
        source: serde_json::Error,
    },
    /// A key is missing or has an unexpected type.
    #[error("bad reference file: {0}")]
    Format(String),
    /// A metric could not be computed on the reference inputs.
    #[error(transparent)]
    Metrics(#[from] MetricsError),
}

fn key<'a>(doc: &'a Value, name: &str) -> Result<&'a Value, ParityError> {
    doc.get(name)
        .ok_or_else(|| ParityError::Format(format!("missing key `{name}`")))
}

fn number(v: &Value, name: &str) -> Result<f64, ParityError> {
    v.as_f64()
        .ok_or_else(|| ParityError::Format(format!("`{name}` is not a number")))
}

fn numbers(v: &Value, name: &str) -> Result<Vec<f64>, ParityError> {
    v.as_array()
        .ok_or_else(|| ParityError::Format(format!("`{name}` is not an array")))?
        .iter()
        .map(|x| number(x, name))
        .collect()
}

fn integers(v: &Value, name: &str) -> Result<Vec<u64>, ParityError> {
    v.as_array()
        .ok_or_else(|| ParityError::Format(format!("`{name}` is not an array")))?
        .iter()
        .map(|x| {
            x.as_u64()
                .ok_or_else(|| ParityError::Format(format!("`{name}` has a non-integer entry")))
        })
        .collect()
}

/// Recomputes the scikit-learn values of a `metrics_case.json` and compares them.
///
/// `path` is the JSON file or a directory holding [`METRICS_CASE_FILE`]. Uses `labels`,
/// `scores_fake`, `threshold` (default 0.5) and compares `accuracy`, `f1_macro`,
/// `roc_auc`, `average_precision`, `eer`, each confusion-matrix entry (key
/// `confusion_matrix_rows_true_cols_pred` or `confusion_matrix`, exact) and, if present,
/// `normalized_auc.by_max_eps` / `by_eps_range`. CAM keys (`iinc`, `pearson`) are ignored.
pub fn check_metrics_case(path: &Path) -> Result<Vec<Check>, ParityError> {
    let path = if path.is_dir() {
        path.join(METRICS_CASE_FILE)
    } else {
        path.to_path_buf()
    };
    let text = std::fs::read_to_string(&path).map_err(|source| ParityError::Io {
        path: path.clone(),
        source,
    })?;
    let doc: Value = serde_json::from_str(&text).map_err(|source| ParityError::Json {
        path: path.clone(),
        source,
    })?;

    if let Some(pos) = doc.get("positive_label") {
        if pos.as_u64() != Some(1) {
            return Err(ParityError::Format(format!(
                "only positive_label = 1 (fake) is supported, got {pos}"
            )));
        }
    }
    let labels = integers(key(&doc, "labels")?, "labels")?;
    let scores = numbers(key(&doc, "scores_fake")?, "scores_fake")?;
    let threshold = match doc.get("threshold") {
        Some(t) => number(t, "threshold")?,
        None => DEFAULT_THRESHOLD,
    };
    let preds = predict(&scores, threshold)?;
    let tol = FLOAT_TOLERANCE;

    let mut checks = vec![
        Check::scalar(
            "accuracy",
            accuracy(&labels, &preds)?,
            number(key(&doc, "accuracy")?, "accuracy")?,
            tol,
        ),
        Check::scalar(
            "f1_macro",
            binary_macro_f1(&labels, &preds)?,
            number(key(&doc, "f1_macro")?, "f1_macro")?,
            tol,
        ),
        Check::scalar(
            "roc_auc",
            roc_auc(&labels, &scores)?,
            number(key(&doc, "roc_auc")?, "roc_auc")?,
            tol,
        ),
        Check::scalar(
            "average_precision",
            average_precision(&labels, &scores)?,
            number(key(&doc, "average_precision")?, "average_precision")?,
            tol,
        ),
        Check::scalar(
            "eer",
            eer(&labels, &scores)?,
            number(key(&doc, "eer")?, "eer")?,
            tol,
        ),
    ];

    let cm_value = doc
        .get("confusion_matrix_rows_true_cols_pred")
        .or_else(|| doc.get("confusion_matrix"))
        .ok_or_else(|| {
            ParityError::Format("missing key `confusion_matrix_rows_true_cols_pred`".into())
        })?;
    let rows = cm_value
        .as_array()
        .ok_or_else(|| ParityError::Format("confusion matrix is not an array".into()))?
        .iter()
        .map(|r| integers(r, "confusion matrix row"))
        .collect::<Result<Vec<_>, _>>()?;
    if rows.len() != 2 || rows.iter().any(|r| r.len() != 2) {
        return Err(ParityError::Format("confusion matrix is not 2×2".into()));
    }
    let ours = BinaryConfusion::from_labels(&labels, &preds)?.as_rows();
    for (t, row) in rows.iter().enumerate() {
        for (p, &reference) in row.iter().enumerate() {
            checks.push(Check::scalar(
                format!("confusion[{t}][{p}]"),
                ours[t][p] as f64,
                reference as f64,
                0.0,
            ));
        }
    }

    if let Some(na) = doc.get("normalized_auc") {
        let eps = numbers(key(na, "eps")?, "normalized_auc.eps")?;
        let metric = numbers(key(na, "metric")?, "normalized_auc.metric")?;
        if let Some(r) = na.get("by_max_eps") {
            checks.push(Check::scalar(
                "normalized_auc.by_max_eps",
                normalized_auc_by_max_eps(&eps, &metric)?,
                number(r, "normalized_auc.by_max_eps")?,
                tol,
            ));
        }
        if let Some(r) = na.get("by_eps_range").or_else(|| na.get("by_range")) {
            checks.push(Check::scalar(
                "normalized_auc.by_range",
                normalized_auc_by_range(&eps, &metric)?,
                number(r, "normalized_auc.by_eps_range")?,
                tol,
            ));
        }
    }
    Ok(checks)
}
