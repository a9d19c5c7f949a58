//! The published study's numbers (`experiments/published/course-2025.toml`, embedded).

use serde::Deserialize;
use std::collections::BTreeMap;

/// The embedded data file.
pub const COURSE_2025: &str = include_str!("../../../experiments/published/course-2025.toml");
/// Why this project's numbers differ from the published ones (a paragraph of the report).
pub const WHY_DIFFERENT: &str = include_str!("../../../experiments/published/why-different.md");

/// Source of the numbers.
#[derive(Debug, Clone, Deserialize)]
pub struct Source {
    /// Title of the publication.
    pub title: String,
    /// Where its text is.
    pub reference: String,
}

/// Clean results of one model.
#[derive(Debug, Clone, Deserialize)]
pub struct Clean {
    /// Accuracy.
    pub accuracy: f64,
    /// "F1 Score" as printed: macro-F1 (the mean of both classes' F1 of `confusion`;
    /// checked by a test), not the fake class's F1.
    pub f1: f64,
    /// Confusion matrix (rows true, cols predicted; real, fake).
    pub confusion: [[u64; 2]; 2],
}

impl Clean {
    /// The printed confusion matrix as counts of the fake class (1 = fake).
    pub fn binary_confusion(&self) -> dfr_metrics::BinaryConfusion {
        let [[tn, fp], [fn_, tp]] = self.confusion;
        dfr_metrics::BinaryConfusion {
            true_negatives: tn,
            false_positives: fp,
            false_negatives: fn_,
            true_positives: tp,
        }
    }
}

/// One attack's published table.
#[derive(Debug, Clone, Deserialize)]
pub struct AttackTable {
    /// ε grid.
    pub eps: Vec<f64>,
    /// Baseline accuracy per ε.
    pub baseline_accuracy: Vec<f64>,
    /// Baseline F1 (binary, fake class) per ε.
    pub baseline_f1: Vec<f64>,
    /// Regularised accuracy per ε.
    pub regularized_accuracy: Vec<f64>,
    /// Regularised F1 per ε.
    pub regularized_f1: Vec<f64>,
    /// Normalised AUC of accuracy (baseline, regularised).
    pub nauc_accuracy: [f64; 2],
    /// Normalised AUC of F1 (baseline, regularised).
    pub nauc_f1: [f64; 2],
}

/// All published numbers.
#[derive(Debug, Clone, Deserialize)]
pub struct Published {
    /// Source.
    pub source: Source,
    /// Clean results by model.
    pub clean: BTreeMap<String, Clean>,
    /// Attack tables by attack name (fgsm, pgd, mifgsm).
    pub attacks: BTreeMap<String, AttackTable>,
}

impl Published {
    /// Parses the embedded file.
    pub fn course_2025() -> Published {
        toml::from_str(COURSE_2025).expect("embedded published numbers parse")
    }

    /// Published value at `eps` (matched to 1e-9), if any.
    pub fn at(values: &[f64], eps_grid: &[f64], eps: f64) -> Option<f64> {
        eps_grid
            .iter()
            .position(|e| (e - eps).abs() < 1e-9)
            .and_then(|i| values.get(i).copied())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_numbers_are_consistent() {
        let p = Published::course_2025();
        for (name, t) in &p.attacks {
            for v in [
                &t.baseline_accuracy,
                &t.baseline_f1,
                &t.regularized_accuracy,
                &t.regularized_f1,
            ] {
                assert_eq!(v.len(), t.eps.len(), "{name}");
                assert!(v.iter().all(|x| (0.0..=1.0).contains(x)));
            }
        }
        let c = &p.clean["baseline"];
        let total: u64 = c.confusion.iter().flatten().sum();
        assert_eq!(total, 71_361, "the published test split size");
        let acc = (c.confusion[0][0] + c.confusion[1][1]) as f64 / total as f64;
        assert!((acc - c.accuracy).abs() < 1e-4, "{acc}");
        // The clean "F1 Score" is macro-F1 of the printed matrix (fake 0.9945, real
        // 0.9627), not the fake-class F1 the attack tables report.
        let cm = dfr_metrics::ConfusionMatrix::from_rows(
            c.confusion.iter().map(|r| r.to_vec()).collect(),
        )
        .unwrap();
        let macro_f1 = dfr_metrics::macro_f1_from_matrix(&cm);
        assert!((macro_f1 - c.f1).abs() < 5e-5, "{macro_f1}");
        let fake = crate::report::fake_f1(&c.binary_confusion());
        assert!(
            (fake - 0.9945).abs() < 5e-5 && (fake - c.f1).abs() > 0.01,
            "{fake}"
        );
    }
}
