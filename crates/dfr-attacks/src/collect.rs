//! What one evaluation pass collects: per-sample outcomes, a few bytes per sample
//! and (attack, ε), aggregated into a report at the end.

/// Per-sample outcome of one evaluation (clean or one attack at one ε).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Outcome {
    /// Hard prediction (`score >= threshold`).
    pub pred: u32,
    /// Fake-class probability.
    pub score: f64,
    /// ‖δ‖∞.
    pub linf: f32,
    /// ‖δ‖₂.
    pub l2: f32,
    /// The attack saw a zero gradient at its start or a non-finite one.
    pub masked: bool,
    /// The adversarial image lies in [0, 1].
    pub in_range: bool,
}

/// Everything collected during the pass.
pub(crate) struct Collected {
    /// Labels of the samples evaluated so far.
    pub labels: Vec<u32>,
    /// Their sources.
    pub sources: Vec<String>,
    /// Their ids (indices in the evaluated list).
    pub ids: Vec<u64>,
    /// Clean outcomes.
    pub clean: Vec<Outcome>,
    /// `[attack][eps] -> per sample`.
    pub adv: Vec<Vec<Vec<Outcome>>>,
    /// Steps check: (correct with steps, correct with 2·steps) per subset sample.
    pub steps_check: Vec<(bool, bool)>,
}

impl Collected {
    /// Empty collections for `attacks` attacks over `eps` radii.
    pub fn new(attacks: usize, eps: usize) -> Self {
        Self {
            labels: Vec::new(),
            sources: Vec::new(),
            ids: Vec::new(),
            clean: Vec::new(),
            adv: vec![vec![Vec::new(); eps]; attacks],
            steps_check: Vec::new(),
        }
    }

    /// Samples evaluated so far.
    pub fn len(&self) -> usize {
        self.labels.len()
    }
}
