//! The worst case at one ε: a worst-case image is robust when it survives every attack that
//! evaluated it. Each attack of the worst-case row runs only on the images the earlier ones
//! left correctly classified (AutoAttack's protocol: the per-image minimum is the same, the
//! cost is that of the survivors), so an evaluation may cover only some of the images.
//!
//! The worst-case images are those of a reference evaluation (the study's random-noise
//! probe, which runs first on all of them); every other evaluation is matched to them by
//! sample id ([`PerSample::index`]), and must agree with the reference on the labels and
//! clean predictions of the images they share.
//!
//! ```
//! use dfr_attacks::PerSample;
//! use dfr_study::worst::{robust, survivors, WorstEval};
//! // Three worst-case images, samples 2, 5 and 7 of the split.
//! let reference = PerSample {
//!     index: vec![2, 5, 7],
//!     labels: vec![0, 1, 1],
//!     clean_pred: vec![0, 1, 0],
//!     clean_score: vec![0.1, 0.9, 0.4],
//!     adv_pred: vec![],
//! };
//! // A first attack on all three, at ε = 0 and ε = 0.01: it flips sample 5 at 0.01.
//! let first = PerSample { adv_pred: vec![vec![vec![0, 1, 0], vec![0, 0, 0]]], ..reference.clone() };
//! let first = [WorstEval::from_per_sample(&first, &reference, 1).unwrap()];
//! assert_eq!(survivors(&[&first[..]], &reference), [2]);
//! // The second attack ran only on sample 2, and did not flip it.
//! let second = PerSample {
//!     index: vec![2], labels: vec![0], clean_pred: vec![0], clean_score: vec![0.1],
//!     adv_pred: vec![vec![vec![0], vec![0]]],
//! };
//! let second = WorstEval::from_per_sample(&second, &reference, 1).unwrap();
//! assert!(!second.covers(1));
//! let evals = [first[0].clone(), second];
//! assert_eq!(robust(&evals, 0), Some(true));
//! assert_eq!(robust(&evals, 1), Some(false)); // the first attack flipped it
//! assert_eq!(robust(&evals, 2), Some(false)); // misclassified by every attack
//! ```

use dfr_attacks::{PerSample, RobustReport};
use std::collections::HashMap;

/// One single-attack evaluation counted in the worst case at one ε: its per-sample data, the
/// ε's index in its grid and where each worst-case image sits in it (`None`: not evaluated).
#[derive(Debug, Clone)]
pub struct WorstEval<'a> {
    per_sample: &'a PerSample,
    eps_index: usize,
    map: Vec<Option<usize>>,
}

impl<'a> WorstEval<'a> {
    /// `r`'s evaluation at `eps` of the worst-case images of `reference`; `None` when `r`
    /// has no such ε, runs more than one attack, records no sample ids, or disagrees with
    /// `reference` on an image both evaluated (label, clean prediction or clean score).
    pub fn of(r: &'a RobustReport, reference: &PerSample, eps: f64) -> Option<WorstEval<'a>> {
        let a = r.attacks.first()?;
        let eps_index = a.results.iter().position(|e| e.eps == eps)?;
        if r.per_sample.adv_pred.len() != 1 {
            return None;
        }
        WorstEval::from_per_sample(&r.per_sample, reference, eps_index)
    }

    /// The evaluation of one attack (`p.adv_pred[0]`) at grid index `eps_index`, matched to
    /// the worst-case images of `reference` by id (see [`WorstEval::of`]).
    pub fn from_per_sample(
        p: &'a PerSample,
        reference: &PerSample,
        eps_index: usize,
    ) -> Option<WorstEval<'a>> {
        let n = p.labels.len();
        if p.index.len() != n || reference.index.len() != reference.labels.len() {
            return None;
        }
        if p.adv_pred.first()?.get(eps_index)?.len() != n {
            return None;
        }
        let at: HashMap<usize, usize> = p.index.iter().enumerate().map(|(j, &s)| (s, j)).collect();
        let mut map = Vec::with_capacity(reference.index.len());
        for (i, s) in reference.index.iter().enumerate() {
            let j = at.get(s).copied();
            if let Some(j) = j {
                let agrees = p.labels[j] == reference.labels[i]
                    && p.clean_pred.get(j) == reference.clean_pred.get(i)
                    && (p.clean_score.get(j)? - reference.clean_score.get(i)?).abs() <= 1e-4;
                if !agrees {
                    return None;
                }
            }
            map.push(j);
        }
        Some(WorstEval {
            per_sample: p,
            eps_index,
            map,
        })
    }

    /// Whether this attack evaluated worst-case image `i`.
    pub fn covers(&self, i: usize) -> bool {
        matches!(self.map.get(i), Some(Some(_)))
    }

    /// Whether worst-case image `i` is classified correctly under this attack (`None` when
    /// the attack did not evaluate it).
    pub fn correct(&self, i: usize) -> Option<bool> {
        let j = (*self.map.get(i)?)?;
        let p = self.per_sample;
        Some(p.adv_pred.first()?.get(self.eps_index)?.get(j)? == p.labels.get(j)?)
    }

    /// Accuracy over the worst-case images `items` (`None` when the attack did not
    /// evaluate all of them).
    pub fn accuracy(&self, items: &[usize]) -> Option<f64> {
        let mut ok = 0usize;
        for &i in items {
            ok += usize::from(self.correct(i)?);
        }
        (!items.is_empty()).then(|| ok as f64 / items.len() as f64)
    }
}

/// Whether worst-case image `i` survives every evaluation in `evals` that covers it:
/// `Some(false)` when one misclassifies it, `Some(true)` when at least one covers it and
/// none does, `None` when none covers it.
pub fn robust(evals: &[WorstEval<'_>], i: usize) -> Option<bool> {
    let mut covered = false;
    for w in evals {
        if let Some(c) = w.correct(i) {
            if !c {
                return Some(false);
            }
            covered = true;
        }
    }
    covered.then_some(true)
}

/// The sample ids (from `reference`) of the worst-case images that no evaluation has yet
/// shown misclassified at one ε at least: `evals_per_eps` holds, per ε, the evaluations
/// done so far. The next attack of the worst case needs to run on these only.
pub fn survivors(evals_per_eps: &[&[WorstEval<'_>]], reference: &PerSample) -> Vec<usize> {
    reference
        .index
        .iter()
        .enumerate()
        .filter(|&(i, _)| {
            evals_per_eps
                .iter()
                .any(|evals| robust(evals, i) != Some(false))
        })
        .map(|(_, &s)| s)
        .collect()
}
