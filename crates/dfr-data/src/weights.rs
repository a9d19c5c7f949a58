//! Class weights for the class-weighted cross-entropy.

use crate::sample::{Label, Sample};
use serde::{Deserialize, Serialize};

/// Per-class counts and weights `w_c = N / (2·N_c)`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ClassWeights {
    /// Number of real samples.
    pub n_real: usize,
    /// Number of fake samples.
    pub n_fake: usize,
    /// `[w_real, w_fake]`.
    pub weights: [f64; 2],
}

impl ClassWeights {
    /// Computes the weights from class counts. A class with no sample gets weight 0
    /// (it cannot contribute to the loss anyway).
    pub fn from_counts(n_real: usize, n_fake: usize) -> Self {
        let n = (n_real + n_fake) as f64;
        let w = |c: usize| if c == 0 { 0.0 } else { n / (2.0 * c as f64) };
        ClassWeights {
            n_real,
            n_fake,
            weights: [w(n_real), w(n_fake)],
        }
    }

    /// Computes the weights from a list of samples (normally the train split).
    pub fn from_samples<'a>(samples: impl IntoIterator<Item = &'a Sample>) -> Self {
        let (mut r, mut f) = (0, 0);
        for s in samples {
            match s.label {
                Label::Real => r += 1,
                Label::Fake => f += 1,
            }
        }
        Self::from_counts(r, f)
    }

    /// Weights as `f32`, in class-index order.
    pub fn as_f32(&self) -> [f32; 2] {
        [self.weights[0] as f32, self.weights[1] as f32]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dffd_weights_match_published_values() {
        // DFFD train split: 10,000 real / 56,265 fake → ≈ 3.313 and 0.589.
        let w = ClassWeights::from_counts(10_000, 56_265);
        assert!((w.weights[0] - 3.31325).abs() < 1e-4, "{:?}", w);
        assert!((w.weights[1] - 0.588865).abs() < 1e-5, "{:?}", w);
        // Weighted counts are balanced: w_r·N_r = w_f·N_f = N/2.
        assert!((w.weights[0] * 10_000.0 - w.weights[1] * 56_265.0).abs() < 1e-6);
    }

    #[test]
    fn missing_class_gets_zero_weight() {
        let w = ClassWeights::from_counts(0, 8);
        assert_eq!(w.weights, [0.0, 0.5]);
    }
}
