//! Robust evaluation: clean and adversarial metrics per attack and ε, sanity checks.
//!
//! Entry points, from the most to the least convenient:
//! - [`evaluate_samples`]: a split's [`Sample`]s (decoded and resized by `dfr-data`);
//! - [`evaluate_loader`]: an existing [`Loader`];
//! - [`evaluate_batches`]: any iterator of in-memory [`EvalBatch`]es.
//!
//! One pass over the data: each batch is evaluated clean, then attacked with every
//! attack at every ε (ε = 0 included: it runs the attack's code path for one step, and
//! a sanity check requires it to reproduce the clean predictions). Per-sample outcomes
//! are kept (a few bytes per sample and attack) and aggregated at the end into a
//! [`RobustReport`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::{DType, Tensor, D};
use dfr_data::{Batch, EvalTransform, Loader, LoaderConfig, Sample, Split, Transform};
use dfr_metrics::{macro_f1_from_matrix, roc_auc, BinaryConfusion};
use serde::{Deserialize, Serialize};

use crate::attack::{check_eps, perturbation_norms, run_attack, AttackKind, AttackParams, Goal};
use crate::classifier::{Classifier, FrozenGuard};
use crate::error::{AttackError, Result};
use crate::io::AdversarialWriter;
use crate::sanity::{sanity_checks, SanityCheck, SanityInputs};

/// Configuration of a robust evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RobustEvalConfig {
    /// Attacks to run (`all`: every [`AttackKind`], which adds the worst case).
    pub attacks: Vec<AttackKind>,
    /// Radii ε > 0 in [0, 1] pixel units (ε = 0, the clean evaluation, is always added).
    pub eps: Vec<f64>,
    /// Iterations of PGD, MI-FGSM and APGD.
    pub steps: usize,
    /// Step size α of PGD / MI-FGSM as a fraction of ε (the study: ε/5 → 0.2).
    pub alpha_ratio: f64,
    /// Absolute step size α, overriding `alpha_ratio` when set.
    pub alpha: Option<f64>,
    /// Random start of PGD and APGD.
    pub random_start: bool,
    /// MI-FGSM decay μ.
    pub decay: f64,
    /// APGD restarts.
    pub apgd_restarts: usize,
    /// Seed of the random starts (noise keyed by sample index, batch-independent).
    pub seed: u64,
    /// Optional class weights (real, fake) of the attack loss.
    pub class_weights: Option<Vec<f32>>,
    /// Side length images are resized to ([`evaluate_samples`]) or must have.
    pub image_size: u32,
    /// Images per batch.
    pub batch_size: usize,
    /// Evaluate at most this many samples (evenly spread over the sample list by
    /// [`evaluate_samples`], the first ones otherwise).
    pub limit: Option<usize>,
    /// Decision threshold on the fake probability (`score >= threshold → fake`).
    pub threshold: f64,
    /// Sanity check: compare PGD with `steps` and `2·steps` at the largest ε.
    pub steps_check: bool,
    /// Samples used by the steps check (the first ones evaluated).
    pub steps_check_samples: usize,
    /// Directory to save the adversarial examples to (f32 safetensors, lossless).
    pub save_adversarial: Option<PathBuf>,
    /// Loader worker threads (0: all cores).
    pub threads: usize,
    /// Fraction of unreadable images [`evaluate_samples`] skips before failing
    /// (skipped files are left out of every metric).
    pub max_bad_fraction: f64,
}

impl Default for RobustEvalConfig {
    fn default() -> Self {
        Self {
            attacks: vec![AttackKind::Pgd],
            eps: vec![1.0 / 255.0, 2.0 / 255.0, 4.0 / 255.0, 8.0 / 255.0],
            steps: 10,
            alpha_ratio: 0.2,
            alpha: None,
            random_start: false,
            decay: 1.0,
            apgd_restarts: 1,
            seed: 0,
            class_weights: None,
            image_size: 224,
            batch_size: 32,
            limit: None,
            threshold: 0.5,
            steps_check: false,
            steps_check_samples: 64,
            save_adversarial: None,
            threads: 0,
            max_bad_fraction: 0.0,
        }
    }
}

/// Parses `fgsm`, `pgd`, `mifgsm`, `apgd`, `all` or a comma-separated list.
pub fn parse_attacks(s: &str) -> Result<Vec<AttackKind>> {
    if s.trim().eq_ignore_ascii_case("all") {
        return Ok(AttackKind::ALL.to_vec());
    }
    let mut out = Vec::new();
    for part in s.split(',').filter(|p| !p.trim().is_empty()) {
        let k: AttackKind = part.parse()?;
        if !out.contains(&k) {
            out.push(k);
        }
    }
    if out.is_empty() {
        return Err(AttackError::param("attacks", "no attack given"));
    }
    Ok(out)
}

impl RobustEvalConfig {
    /// Checks the configuration (ε values, steps, step size, batch size, …).
    pub fn validate(&self) -> Result<()> {
        if self.attacks.is_empty() {
            return Err(AttackError::param("attacks", "no attack given"));
        }
        for &e in &self.eps {
            check_eps(e)?;
        }
        if self.batch_size == 0 {
            return Err(AttackError::param("batch_size", "must be at least 1"));
        }
        if self.image_size == 0 {
            return Err(AttackError::param("image_size", "must be at least 1"));
        }
        if !(self.max_bad_fraction.is_finite() && (0.0..=1.0).contains(&self.max_bad_fraction)) {
            return Err(AttackError::param(
                "max_bad_fraction",
                format!("must be in [0, 1], got {}", self.max_bad_fraction),
            ));
        }
        if self.limit == Some(0) {
            return Err(AttackError::param("limit", "must be at least 1"));
        }
        if !(self.threshold.is_finite() && (0.0..=1.0).contains(&self.threshold)) {
            return Err(AttackError::param(
                "threshold",
                format!("must be in [0, 1], got {}", self.threshold),
            ));
        }
        if self.steps_check && self.steps_check_samples == 0 {
            return Err(AttackError::param(
                "steps_check_samples",
                "must be at least 1",
            ));
        }
        if let Some(w) = &self.class_weights {
            if w.len() != 2 {
                return Err(AttackError::param(
                    "class_weights",
                    format!("need 2 weights (real, fake), got {}", w.len()),
                ));
            }
        }
        for &k in &self.attacks {
            self.params(k, self.eps.iter().cloned().fold(0.0, f64::max))?
                .validate()?;
        }
        Ok(())
    }

    /// The ε values evaluated: 0 first, then the configured ones, sorted, deduplicated.
    pub fn eps_grid(&self) -> Vec<f64> {
        let mut v: Vec<f64> = std::iter::once(0.0)
            .chain(self.eps.iter().copied())
            .collect();
        v.sort_by(f64::total_cmp);
        v.dedup();
        v
    }

    /// Attack parameters of `kind` at `eps`.
    pub fn params(&self, kind: AttackKind, eps: f64) -> Result<AttackParams> {
        Ok(AttackParams {
            kind,
            eps: eps as f32,
            steps: self.steps,
            alpha: self.alpha.map(|a| a as f32),
            alpha_ratio: self.alpha_ratio as f32,
            random_start: self.random_start,
            decay: self.decay as f32,
            seed: self.seed,
            class_weights: self.class_weights.clone(),
            apgd_rho: 0.75,
            apgd_restarts: self.apgd_restarts,
        })
    }
}

/// Classification metrics of one evaluation (clean or under attack).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// Samples.
    pub n: usize,
    /// Accuracy (robust accuracy under attack).
    pub accuracy: f64,
    /// Mean of the real-class and fake-class F1.
    pub macro_f1: f64,
    /// ROC-AUC of the fake probability (`None` with a single class or non-finite scores).
    pub roc_auc: Option<f64>,
    /// Confusion counts (rows true, columns predicted; fake positive).
    pub confusion: BinaryConfusion,
}

/// Accuracy on one source (generation method).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceAccuracy {
    /// Source name (`ffhq`, `stylegan_ffhq`, …).
    pub source: String,
    /// Samples of the source.
    pub n: usize,
    /// Accuracy on them.
    pub accuracy: f64,
}

/// Results of one attack at one ε.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpsResult {
    /// The radius.
    pub eps: f64,
    /// The step size: ε (FGSM), α (PGD, MI-FGSM), the initial 2ε (APGD).
    pub step_size: f64,
    /// Iterations run (1 for FGSM and at ε = 0).
    pub steps: usize,
    /// Metrics on the adversarial images.
    pub metrics: Metrics,
    /// Fraction of the clean-correct samples that the attack made wrong.
    pub attack_success_rate: f64,
    /// Accuracy per source.
    pub per_source: Vec<SourceAccuracy>,
    /// Mean per-sample ‖δ‖∞.
    pub linf_mean: f64,
    /// Largest ‖δ‖∞.
    pub linf_max: f64,
    /// Mean per-sample ‖δ‖₂.
    pub l2_mean: f64,
    /// Largest ‖δ‖₂.
    pub l2_max: f64,
    /// Samples whose input gradient was zero at the start or non-finite (possible
    /// gradient masking).
    pub masked_samples: usize,
}

/// All ε of one attack.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttackResult {
    /// The attack.
    pub attack: AttackKind,
    /// One entry per ε of [`RobustEvalConfig::eps_grid`] (ε = 0 first).
    pub results: Vec<EpsResult>,
}

/// Per-sample worst case over all attacks at one ε: a sample counts as robust only
/// if every attack leaves it correctly classified.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorstCaseResult {
    /// The radius.
    pub eps: f64,
    /// Samples.
    pub n: usize,
    /// Worst-case robust accuracy.
    pub accuracy: f64,
    /// Worst-case accuracy per source.
    pub per_source: Vec<SourceAccuracy>,
}

/// The result of a robust evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RobustReport {
    /// The configuration used.
    pub config: RobustEvalConfig,
    /// Samples evaluated.
    pub n_samples: usize,
    /// Real samples among them.
    pub n_real: usize,
    /// Fake samples among them.
    pub n_fake: usize,
    /// Clean evaluation (ε = 0, no attack).
    pub clean: Metrics,
    /// Clean accuracy per source.
    pub clean_per_source: Vec<SourceAccuracy>,
    /// Results per attack.
    pub attacks: Vec<AttackResult>,
    /// Per-sample worst case over the attacks, per ε (empty with a single attack).
    pub worst_case: Vec<WorstCaseResult>,
    /// Sanity checks (AutoAttack-style).
    pub sanity: Vec<SanityCheck>,
    /// Wall-clock seconds.
    pub elapsed_s: f64,
    /// Where the adversarial examples were saved.
    pub adversarial_dir: Option<PathBuf>,
}

impl RobustReport {
    /// The result of `attack` at `eps` (exact match of the configured value).
    pub fn get(&self, attack: AttackKind, eps: f64) -> Option<&EpsResult> {
        self.attacks
            .iter()
            .find(|a| a.attack == attack)?
            .results
            .iter()
            .find(|r| r.eps == eps)
    }

    /// Whether every sanity check passed.
    pub fn sanity_passed(&self) -> bool {
        self.sanity.iter().all(|c| c.passed)
    }
}

/// A batch to evaluate: images `(N, 3, H, W)` in [0, 1] and per-sample metadata.
#[derive(Debug, Clone)]
pub struct EvalBatch {
    /// Images.
    pub images: Tensor,
    /// Labels (0 = real, 1 = fake).
    pub labels: Vec<u32>,
    /// Source (generation method) of each sample.
    pub sources: Vec<String>,
    /// Sample ids (dataset indices): key the random-start noise and name saved samples.
    pub ids: Vec<u64>,
}

impl EvalBatch {
    /// Converts a `dfr-data` batch; sources are looked up in `samples` by index.
    pub fn from_batch(
        batch: Batch,
        samples: &[Sample],
        device: &candle_core::Device,
    ) -> Result<Self> {
        let sources = batch
            .indices
            .iter()
            .map(|&i| {
                samples.get(i).map(|s| s.method.clone()).ok_or_else(|| {
                    AttackError::InvalidInput(format!("batch index {i} out of the sample list"))
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let images = Tensor::from_vec(batch.images, batch.shape.to_vec(), device)?;
        Ok(Self {
            images,
            labels: batch.labels,
            sources,
            ids: batch.indices.iter().map(|&i| i as u64).collect(),
        })
    }
}

/// Per-sample outcome of one evaluation.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Outcome {
    pub pred: u32,
    pub score: f64,
    pub linf: f32,
    pub l2: f32,
    pub masked: bool,
    pub in_range: bool,
}

/// Everything collected during the pass.
pub(crate) struct Collected {
    pub labels: Vec<u32>,
    pub sources: Vec<String>,
    pub clean: Vec<Outcome>,
    /// `[attack][eps] -> per sample`.
    pub adv: Vec<Vec<Vec<Outcome>>>,
    /// Steps check: (correct with steps, correct with 2·steps) per subset sample.
    pub steps_check: Vec<(bool, bool)>,
}

/// Fake-class probabilities and hard predictions of `images`.
fn predict(
    model: &(impl Classifier + ?Sized),
    images: &Tensor,
    threshold: f64,
) -> Result<Vec<(u32, f64)>> {
    let n = images.dim(0)?;
    let logits = model.logits(&images.detach())?;
    match logits.dims() {
        [a, 2] if *a == n => {}
        [a, k] if *a == n => {
            return Err(AttackError::ClassMismatch {
                expected: 2,
                found: *k,
            })
        }
        d => {
            return Err(AttackError::InvalidInput(format!(
                "the model returned logits of shape {d:?} for {n} images"
            )))
        }
    }
    let probs = candle_nn::ops::softmax(&logits.to_dtype(DType::F32)?, D::Minus1)?;
    let fake: Vec<f32> = probs.narrow(1, 1, 1)?.flatten_all()?.to_vec1()?;
    Ok(fake
        .into_iter()
        .map(|p| {
            let p = p as f64;
            (u32::from(p >= threshold), p)
        })
        .collect())
}

/// Evaluates the samples of one split: at most `limit` of them, evenly spread over
/// the list (so that every source keeps its share), resized to `image_size`.
pub fn evaluate_samples(
    model: &(impl Classifier + ?Sized),
    samples: &[Sample],
    split: Split,
    config: &RobustEvalConfig,
) -> Result<RobustReport> {
    config.validate()?;
    if samples.is_empty() {
        return Err(AttackError::NoSamples);
    }
    let chosen: Vec<Sample> = match config.limit {
        Some(l) if l < samples.len() => (0..l)
            .map(|i| samples[i * samples.len() / l].clone())
            .collect(),
        _ => samples.to_vec(),
    };
    let loader = Loader::new(
        chosen,
        split,
        Transform::Eval(EvalTransform {
            size: config.image_size,
        }),
        LoaderConfig {
            batch_size: config.batch_size,
            shuffle: false,
            drop_last: false,
            seed: config.seed,
            threads: config.threads,
            prefetch: 2,
        },
        config.max_bad_fraction,
    )?;
    evaluate_loader(model, &loader, config)
}

/// Evaluates the first epoch (unshuffled order recommended) of `loader`, stopping
/// after `limit` samples.
pub fn evaluate_loader(
    model: &(impl Classifier + ?Sized),
    loader: &Loader,
    config: &RobustEvalConfig,
) -> Result<RobustReport> {
    let device = model.device();
    let samples = loader.samples();
    let batches = loader
        .epoch(0, 0)
        .map(|b| EvalBatch::from_batch(b?, samples, &device));
    evaluate_batches(model, batches, config)
}

/// The core evaluation over any batches (see the module documentation).
pub fn evaluate_batches<I>(
    model: &(impl Classifier + ?Sized),
    batches: I,
    config: &RobustEvalConfig,
) -> Result<RobustReport>
where
    I: IntoIterator<Item = Result<EvalBatch>>,
{
    config.validate()?;
    if let Some(k) = model.num_classes() {
        if k != 2 {
            return Err(AttackError::ClassMismatch {
                expected: 2,
                found: k,
            });
        }
    }
    let start = Instant::now();
    let _frozen = FrozenGuard::new(model);
    let eps_grid = config.eps_grid();
    let max_eps = eps_grid.last().copied().unwrap_or(0.0);
    let mut col = Collected {
        labels: Vec::new(),
        sources: Vec::new(),
        clean: Vec::new(),
        adv: vec![vec![Vec::new(); eps_grid.len()]; config.attacks.len()],
        steps_check: Vec::new(),
    };
    let mut writer = match &config.save_adversarial {
        Some(dir) => Some(AdversarialWriter::new(dir)?),
        None => None,
    };
    let limit = config.limit.unwrap_or(usize::MAX);
    for (bi, batch) in batches.into_iter().enumerate() {
        let remaining = limit - col.labels.len();
        if remaining == 0 {
            break;
        }
        let mut b = batch?;
        check_batch(&b, config.image_size)?;
        if b.labels.len() > remaining {
            b.images = b.images.narrow(0, 0, remaining)?;
            b.labels.truncate(remaining);
            b.sources.truncate(remaining);
            b.ids.truncate(remaining);
        }
        let first_sample = col.labels.len();
        evaluate_one_batch(
            model,
            &b,
            config,
            &eps_grid,
            max_eps,
            first_sample,
            &mut col,
            writer.as_mut(),
            bi,
        )?;
        tracing::info!(
            batch = bi,
            samples = col.labels.len(),
            elapsed_s = start.elapsed().as_secs_f64(),
            "robust evaluation"
        );
    }
    if col.labels.is_empty() {
        return Err(AttackError::NoSamples);
    }
    let adversarial_dir = match writer {
        Some(w) => Some(w.finish()?),
        None => None,
    };
    build_report(
        config,
        &eps_grid,
        &col,
        start.elapsed().as_secs_f64(),
        adversarial_dir,
    )
}

fn check_batch(b: &EvalBatch, size: u32) -> Result<()> {
    let n = b.labels.len();
    let dims = b.images.dims();
    if dims.len() != 4 || dims[0] != n || dims[1] != 3 {
        return Err(AttackError::InvalidInput(format!(
            "batch images of shape {dims:?} for {n} labels (expected ({n}, 3, H, W))"
        )));
    }
    if dims[2] != size as usize || dims[3] != size as usize {
        return Err(AttackError::InvalidInput(format!(
            "batch images are {}x{}, the evaluation expects {size}x{size}",
            dims[2], dims[3]
        )));
    }
    if b.sources.len() != n || b.ids.len() != n {
        return Err(AttackError::InvalidInput(format!(
            "{} sources and {} ids for {n} labels",
            b.sources.len(),
            b.ids.len()
        )));
    }
    if let Some(l) = b.labels.iter().find(|l| **l > 1) {
        return Err(AttackError::InvalidInput(format!(
            "label {l}: a binary detector needs labels 0 (real) or 1 (fake)"
        )));
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn evaluate_one_batch(
    model: &(impl Classifier + ?Sized),
    b: &EvalBatch,
    config: &RobustEvalConfig,
    eps_grid: &[f64],
    max_eps: f64,
    first_sample: usize,
    col: &mut Collected,
    mut writer: Option<&mut AdversarialWriter>,
    batch_index: usize,
) -> Result<()> {
    let n = b.labels.len();
    let images = b.images.to_device(&model.device())?.to_dtype(DType::F32)?;
    let clean = predict(model, &images, config.threshold)?;
    col.clean.extend(clean.iter().map(|&(pred, score)| Outcome {
        pred,
        score,
        in_range: true,
        ..Outcome::default()
    }));
    if let Some(w) = writer.as_deref_mut() {
        let scores: Vec<f32> = clean.iter().map(|p| p.1 as f32).collect();
        w.save_clean(batch_index, b, &images, &scores)?;
    }
    // steps check subset of this batch
    let check_n = if config.steps_check && max_eps > 0.0 {
        config
            .steps_check_samples
            .saturating_sub(first_sample)
            .min(n)
    } else {
        0
    };
    let mut pgd_max_correct: Option<Vec<bool>> = None;
    for (ai, &kind) in config.attacks.iter().enumerate() {
        for (ei, &eps) in eps_grid.iter().enumerate() {
            let mut params = config.params(kind, eps)?;
            if eps == 0.0 {
                // every step is a no-op at ε = 0: one step exercises the code path
                params.steps = 1;
            }
            let out = run_attack(
                model,
                &params,
                &images,
                &b.labels,
                Goal::Untargeted,
                Some(&b.ids),
            )?;
            let adv = out.adversarial;
            let preds = predict(model, &adv, config.threshold)?;
            let (linf, l2) = perturbation_norms(&images, &adv)?;
            let (lo, hi) = (
                adv.min_keepdim(1)?
                    .flatten_from(1)?
                    .min(1)?
                    .to_vec1::<f32>()?,
                adv.max_keepdim(1)?
                    .flatten_from(1)?
                    .max(1)?
                    .to_vec1::<f32>()?,
            );
            let masked = out.grad_stats.masked();
            col.adv[ai][ei].extend((0..n).map(|i| Outcome {
                pred: preds[i].0,
                score: preds[i].1,
                linf: linf[i],
                l2: l2[i],
                masked: masked[i],
                in_range: lo[i] >= 0.0 && hi[i] <= 1.0,
            }));
            if kind == AttackKind::Pgd && eps == max_eps && check_n > 0 {
                pgd_max_correct = Some((0..check_n).map(|i| preds[i].0 == b.labels[i]).collect());
            }
            if let Some(w) = writer.as_deref_mut() {
                let scores: Vec<f32> = preds.iter().map(|p| p.1 as f32).collect();
                w.save_adversarial(batch_index, kind, eps, &params, b, &images, &adv, &scores)?;
            }
        }
    }
    if check_n > 0 {
        let sub = images.narrow(0, 0, check_n)?;
        let labels = &b.labels[..check_n];
        let ids = &b.ids[..check_n];
        let base = config.params(AttackKind::Pgd, max_eps)?;
        let once = match pgd_max_correct {
            Some(v) => v,
            None => attack_correct(model, &base, &sub, labels, ids, config.threshold)?,
        };
        let mut twice_p = base.clone();
        twice_p.steps = base.steps * 2;
        let twice = attack_correct(model, &twice_p, &sub, labels, ids, config.threshold)?;
        col.steps_check.extend(once.into_iter().zip(twice));
    }
    col.labels.extend_from_slice(&b.labels);
    col.sources.extend(b.sources.iter().cloned());
    Ok(())
}

fn attack_correct(
    model: &(impl Classifier + ?Sized),
    params: &AttackParams,
    images: &Tensor,
    labels: &[u32],
    ids: &[u64],
    threshold: f64,
) -> Result<Vec<bool>> {
    let out = run_attack(model, params, images, labels, Goal::Untargeted, Some(ids))?;
    let preds = predict(model, &out.adversarial, threshold)?;
    Ok(preds.iter().zip(labels).map(|(p, l)| p.0 == *l).collect())
}

/// Metrics of hard predictions and scores against labels.
pub fn compute_metrics(labels: &[u32], preds: &[u32], scores: &[f64]) -> Metrics {
    let mut c = BinaryConfusion::default();
    for (&l, &p) in labels.iter().zip(preds) {
        match (l, p) {
            (0, 0) => c.true_negatives += 1,
            (0, _) => c.false_positives += 1,
            (_, 0) => c.false_negatives += 1,
            _ => c.true_positives += 1,
        }
    }
    let n = labels.len();
    let correct = c.true_negatives + c.true_positives;
    Metrics {
        n,
        accuracy: if n == 0 {
            0.0
        } else {
            correct as f64 / n as f64
        },
        macro_f1: macro_f1_from_matrix(&c.to_matrix()),
        roc_auc: roc_auc(labels, scores).ok(),
        confusion: c,
    }
}

pub(crate) fn per_source(sources: &[String], correct: &[bool]) -> Vec<SourceAccuracy> {
    let mut m: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for (s, &c) in sources.iter().zip(correct) {
        let e = m.entry(s.as_str()).or_default();
        e.0 += 1;
        e.1 += usize::from(c);
    }
    m.into_iter()
        .map(|(s, (n, k))| SourceAccuracy {
            source: s.to_string(),
            n,
            accuracy: k as f64 / n as f64,
        })
        .collect()
}

fn build_report(
    config: &RobustEvalConfig,
    eps_grid: &[f64],
    col: &Collected,
    elapsed_s: f64,
    adversarial_dir: Option<PathBuf>,
) -> Result<RobustReport> {
    let labels = &col.labels;
    let n = labels.len();
    let metrics_of = |o: &[Outcome]| {
        let preds: Vec<u32> = o.iter().map(|x| x.pred).collect();
        let scores: Vec<f64> = o.iter().map(|x| x.score).collect();
        compute_metrics(labels, &preds, &scores)
    };
    let correct_of =
        |o: &[Outcome]| -> Vec<bool> { o.iter().zip(labels).map(|(x, l)| x.pred == *l).collect() };
    let clean_correct = correct_of(&col.clean);
    let n_clean_correct = clean_correct.iter().filter(|c| **c).count();
    let mut attacks = Vec::new();
    for (ai, &kind) in config.attacks.iter().enumerate() {
        let mut results = Vec::new();
        for (ei, &eps) in eps_grid.iter().enumerate() {
            let o = &col.adv[ai][ei];
            let p = config.params(kind, eps)?;
            let correct = correct_of(o);
            let flipped = clean_correct
                .iter()
                .zip(&correct)
                .filter(|(c, a)| **c && !**a)
                .count();
            let nf = o.len().max(1) as f64;
            results.push(EpsResult {
                eps,
                step_size: match kind {
                    AttackKind::Fgsm => eps,
                    AttackKind::Pgd | AttackKind::MiFgsm => p.step_size() as f64,
                    AttackKind::Apgd => 2.0 * eps,
                },
                steps: if kind == AttackKind::Fgsm || eps == 0.0 {
                    1
                } else {
                    config.steps
                },
                metrics: metrics_of(o),
                attack_success_rate: if n_clean_correct == 0 {
                    0.0
                } else {
                    flipped as f64 / n_clean_correct as f64
                },
                per_source: per_source(&col.sources, &correct),
                linf_mean: o.iter().map(|x| x.linf as f64).sum::<f64>() / nf,
                linf_max: o.iter().map(|x| x.linf as f64).fold(0.0, f64::max),
                l2_mean: o.iter().map(|x| x.l2 as f64).sum::<f64>() / nf,
                l2_max: o.iter().map(|x| x.l2 as f64).fold(0.0, f64::max),
                masked_samples: o.iter().filter(|x| x.masked).count(),
            });
        }
        attacks.push(AttackResult {
            attack: kind,
            results,
        });
    }
    let mut worst_case = Vec::new();
    if config.attacks.len() > 1 {
        for (ei, &eps) in eps_grid.iter().enumerate() {
            let robust: Vec<bool> = (0..n)
                .map(|i| (0..config.attacks.len()).all(|ai| col.adv[ai][ei][i].pred == labels[i]))
                .collect();
            worst_case.push(WorstCaseResult {
                eps,
                n,
                accuracy: robust.iter().filter(|r| **r).count() as f64 / n as f64,
                per_source: per_source(&col.sources, &robust),
            });
        }
    }
    let clean = metrics_of(&col.clean);
    let sanity = sanity_checks(&SanityInputs {
        config,
        eps_grid,
        collected: col,
    });
    Ok(RobustReport {
        config: config.clone(),
        n_samples: n,
        n_real: labels.iter().filter(|l| **l == 0).count(),
        n_fake: labels.iter().filter(|l| **l == 1).count(),
        clean,
        clean_per_source: per_source(&col.sources, &clean_correct),
        attacks,
        worst_case,
        sanity,
        elapsed_s,
        adversarial_dir,
    })
}

/// Loads a binary real/fake detector checkpoint, checking its metadata first: a
/// checkpoint with another number of classes (e.g. a 1000-class ImageNet model) or,
/// when `expected_arch` is given, another architecture is a typed error.
pub fn load_detector(
    path: &Path,
    device: &candle_core::Device,
    expected_arch: Option<dfr_model::Arch>,
) -> Result<dfr_model::EfficientNet> {
    let meta = dfr_model::checkpoint::read_checkpoint_meta(path)?;
    check_detector_meta(path, &meta, expected_arch)?;
    let (model, _) = dfr_model::checkpoint::load_checkpoint(path, device)?;
    Ok(model)
}

/// Checks a checkpoint's metadata for a binary detector of `expected_arch`.
pub fn check_detector_meta(
    path: &Path,
    meta: &dfr_model::checkpoint::CheckpointMeta,
    expected_arch: Option<dfr_model::Arch>,
) -> Result<()> {
    if let Some(a) = expected_arch {
        if meta.arch != a {
            return Err(AttackError::ArchMismatch {
                path: path.to_path_buf(),
                expected: a.name().into(),
                found: meta.arch.name().into(),
            });
        }
    }
    if meta.num_classes != 2 || meta.model_config.num_classes != 2 {
        return Err(AttackError::ClassMismatch {
            expected: 2,
            found: if meta.num_classes != 2 {
                meta.num_classes
            } else {
                meta.model_config.num_classes
            },
        });
    }
    Ok(())
}
