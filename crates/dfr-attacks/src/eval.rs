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

use std::path::PathBuf;
use std::time::Instant;

use candle_core::{DType, Tensor, D};
use dfr_data::{EvalTransform, Loader, LoaderConfig, Sample, Split, Transform};

use crate::adversarial::{AdversarialWriter, BatchToSave};
use crate::attack::{
    continue_pgd, perturbation_norms, run_attack, run_attack_grid, AttackKind, Goal,
};
use crate::batch::EvalBatch;
use crate::classifier::Classifier;
use crate::collect::{Collected, Outcome};
use crate::config::RobustEvalConfig;
use crate::error::{AttackError, Result};
use crate::report::RobustReport;

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

/// The indices of the samples [`evaluate_samples`] evaluates out of `n` with `limit`: all of
/// them, or `limit` evenly spread over the list (so that every source keeps its share).
///
/// ```
/// assert_eq!(dfr_attacks::eval::spread_indices(10, Some(4)), [0, 2, 5, 7]);
/// assert_eq!(dfr_attacks::eval::spread_indices(3, Some(5)), [0, 1, 2]);
/// assert_eq!(dfr_attacks::eval::spread_indices(3, None), [0, 1, 2]);
/// ```
pub fn spread_indices(n: usize, limit: Option<usize>) -> Vec<usize> {
    match limit {
        Some(l) if l < n => (0..l).map(|i| i * n / l).collect(),
        _ => (0..n).collect(),
    }
}

/// The indices of the samples [`evaluate_samples`] evaluates out of `n` under `config`:
/// its `subset` (checked against `n`), or [`spread_indices`] of its `limit`.
///
/// ```
/// use dfr_attacks::RobustEvalConfig;
/// let c = RobustEvalConfig { subset: Some(vec![1, 4]), ..Default::default() };
/// assert_eq!(dfr_attacks::eval::chosen_indices(5, &c).unwrap(), [1, 4]);
/// assert!(dfr_attacks::eval::chosen_indices(4, &c).is_err());
/// let c = RobustEvalConfig { limit: Some(2), ..Default::default() };
/// assert_eq!(dfr_attacks::eval::chosen_indices(4, &c).unwrap(), [0, 2]);
/// ```
pub fn chosen_indices(n: usize, config: &RobustEvalConfig) -> Result<Vec<usize>> {
    match &config.subset {
        Some(s) => match s.iter().find(|&&i| i >= n) {
            Some(i) => Err(AttackError::param(
                "subset",
                format!("names sample {i}, but the list holds {n} samples"),
            )),
            None => Ok(s.clone()),
        },
        None => Ok(spread_indices(n, config.limit)),
    }
}

/// Evaluates the samples of one split: those of `subset`, or at most `limit` of them,
/// evenly spread over the list (so that every source keeps its share), resized to
/// `image_size`. Every sample keeps its index in `samples` as its id (in
/// [`crate::PerSample::index`], and as the key of its random start): an image is attacked
/// the same way whichever other images are evaluated with it.
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
    let indices = chosen_indices(samples.len(), config)?;
    let chosen: Vec<Sample> = indices.iter().map(|&i| samples[i].clone()).collect();
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
    let device = model.device();
    let batches = loader.epoch(0, 0).map(|b| {
        let mut b = EvalBatch::from_batch(b?, loader.samples(), &device)?;
        for id in &mut b.ids {
            *id = indices[*id as usize] as u64;
        }
        Ok(b)
    });
    evaluate_batches(model, batches, config)
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
    let _frozen = model.freeze();
    let eps_grid = config.eps_grid();
    let mut pass = Pass {
        model,
        config,
        max_eps: eps_grid.last().copied().unwrap_or(0.0),
        collected: Collected::new(config.attacks.len(), eps_grid.len()),
        writer: match &config.save_adversarial {
            Some(dir) => Some(AdversarialWriter::new(dir)?),
            None => None,
        },
        eps_grid,
    };
    let limit = config.limit.unwrap_or(usize::MAX);
    for (bi, batch) in batches.into_iter().enumerate() {
        let remaining = limit - pass.collected.len();
        if remaining == 0 {
            break;
        }
        let mut b = batch?;
        b.check(config.image_size)?;
        b.truncate(remaining)?;
        pass.batch(&b, bi)?;
        tracing::info!(
            batch = bi,
            samples = pass.collected.len(),
            elapsed_s = start.elapsed().as_secs_f64(),
            "robust evaluation"
        );
    }
    if pass.collected.len() == 0 {
        return Err(AttackError::NoSamples);
    }
    let adversarial_dir: Option<PathBuf> = match pass.writer {
        Some(w) => Some(w.finish()?),
        None => None,
    };
    RobustReport::from_collected(
        config,
        &pass.eps_grid,
        &pass.collected,
        start.elapsed().as_secs_f64(),
        adversarial_dir,
    )
}

/// One evaluation pass: what stays fixed over the batches and what accumulates.
struct Pass<'a, M: Classifier + ?Sized> {
    model: &'a M,
    config: &'a RobustEvalConfig,
    eps_grid: Vec<f64>,
    max_eps: f64,
    collected: Collected,
    writer: Option<AdversarialWriter>,
}

impl<M: Classifier + ?Sized> Pass<'_, M> {
    /// Evaluates batch `index` clean and under every attack at every ε.
    fn batch(&mut self, b: &EvalBatch, index: usize) -> Result<()> {
        let (model, config) = (self.model, self.config);
        let n = b.labels.len();
        let first_sample = self.collected.len();
        let images = b.images.to_device(&model.device())?.to_dtype(DType::F32)?;
        let to_save = BatchToSave {
            index,
            batch: b,
            clean: &images,
        };
        let clean = predict(model, &images, config.threshold)?;
        self.collected
            .clean
            .extend(clean.iter().map(|&(pred, score)| Outcome {
                pred,
                score,
                in_range: true,
                ..Outcome::default()
            }));
        if let Some(w) = self.writer.as_mut() {
            let scores: Vec<f32> = clean.iter().map(|p| p.1 as f32).collect();
            w.save_clean(to_save, &scores)?;
        }
        // steps check subset of this batch
        let check_n = if config.steps_check && self.max_eps > 0.0 {
            config
                .steps_check_samples
                .saturating_sub(first_sample)
                .min(n)
        } else {
            0
        };
        // PGD at the largest ε on the check's samples: its verdicts and its images (the
        // check continues them for as many steps again).
        let mut pgd_max: Option<(Vec<bool>, Tensor)> = None;
        for (ai, &kind) in config.attacks.iter().enumerate() {
            let grid = self
                .eps_grid
                .iter()
                .map(|&eps| config.params(kind, eps))
                .collect::<Result<Vec<_>>>()?;
            // One call per attack over the whole grid: FGSM shares its gradient.
            let outs = run_attack_grid(
                model,
                &grid,
                &images,
                &b.labels,
                Goal::Untargeted,
                Some(&b.ids),
            )?;
            for (ei, (out, params)) in outs.into_iter().zip(&grid).enumerate() {
                let eps = self.eps_grid[ei];
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
                self.collected.adv[ai][ei].extend((0..n).map(|i| Outcome {
                    pred: preds[i].0,
                    score: preds[i].1,
                    linf: linf[i],
                    l2: l2[i],
                    masked: masked[i],
                    in_range: lo[i] >= 0.0 && hi[i] <= 1.0,
                }));
                if kind == AttackKind::Pgd && eps == self.max_eps && check_n > 0 {
                    pgd_max = Some((
                        (0..check_n).map(|i| preds[i].0 == b.labels[i]).collect(),
                        adv.narrow(0, 0, check_n)?,
                    ));
                }
                if let Some(w) = self.writer.as_mut() {
                    let scores: Vec<f32> = preds.iter().map(|p| p.1 as f32).collect();
                    w.save_adversarial(to_save, eps, params, &adv, &scores)?;
                }
            }
        }
        if check_n > 0 {
            let sub = images.narrow(0, 0, check_n)?;
            let labels = &b.labels[..check_n];
            let ids = &b.ids[..check_n];
            let base = config.params(AttackKind::Pgd, self.max_eps)?;
            let (once, after) = match pgd_max {
                Some(v) => v,
                None => {
                    let out = run_attack(model, &base, &sub, labels, Goal::Untargeted, Some(ids))?;
                    (
                        correct(model, &out.adversarial, labels, config.threshold)?,
                        out.adversarial,
                    )
                }
            };
            // Twice the steps: the same run continued (bit for bit a run of 2 × steps).
            let twice = continue_pgd(
                model,
                &base,
                &sub,
                &after,
                labels,
                Goal::Untargeted,
                Some(ids),
            )?;
            let twice = correct(model, &twice.adversarial, labels, config.threshold)?;
            self.collected
                .steps_check
                .extend(once.into_iter().zip(twice));
        }
        self.collected.labels.extend_from_slice(&b.labels);
        self.collected.ids.extend_from_slice(&b.ids);
        self.collected.sources.extend(b.sources.iter().cloned());
        Ok(())
    }
}

/// Whether each image of `adv` is classified as its label.
fn correct(
    model: &(impl Classifier + ?Sized),
    adv: &Tensor,
    labels: &[u32],
    threshold: f64,
) -> Result<Vec<bool>> {
    let preds = predict(model, adv, threshold)?;
    Ok(preds.iter().zip(labels).map(|(p, l)| p.0 == *l).collect())
}
