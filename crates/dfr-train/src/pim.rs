//! The Perturbation Injection Module (gradient regularisation of shallow statistics).
//!
//! With `f` the features after the shallow part (stage `k`, frozen, eval mode):
//! ```text
//! mu    = mean_hw f                   sigma = sqrt(biased var_hw f + 1e-6)
//! n     = (f − mu) / sigma            (held fixed for the statistics gradient)
//! L_c   = CE_w(deep(f), y)
//! g_mu  = Σ_hw ∂L_c/∂f                g_sigma = Σ_hw ∂L_c/∂f · n
//! Δ     = r · (g_mu, g_sigma) / ‖(g_mu, g_sigma)‖₂     (one norm over the batch, or per sample)
//! L_p   = CE_w(deep(n·(sigma+Δσ) + (mu+Δμ)), y)       (Δ constant)
//! L     = (1−α)·L_c + α·L_p
//! ```
//! `∂L_c/∂f` is read through a zero variable added to `f` (candle keeps gradients of variables
//! only). Both passes use the same dropout/stochastic-depth masks. With `α = 0` or `r = 0` the
//! perturbed pass equals the clean one and is skipped, so training reduces exactly to the
//! clean objective (and BN statistics are updated once, as in baseline training).
//!
//! Both passes run the deep part in train mode (each normalises with its own batch
//! statistics), but by default only the clean pass updates the running statistics
//! ([`BnUpdate::Clean`]): the perturbed pass's update is undone, so the regularised model's
//! evaluation statistics advance with the baseline's momentum and describe clean features.
//! [`BnUpdate::Both`] keeps the naive two-pass behaviour.

use crate::config::{BnUpdate, Direction, GradRegConfig, NormScope};
use candle_core::backprop::GradStore;
use candle_core::{DType, Result, Tensor, Var, D};
use dfr_model::loss::weighted_cross_entropy;
use dfr_model::EfficientNet;
use rand::SeedableRng;
use rand_distr::Distribution;

/// Everything one PIM step computes.
#[derive(Debug)]
pub struct PimOutput {
    /// Clean-pass logits (train mode).
    pub logits_clean: Tensor,
    /// `L_clean`.
    pub loss_clean: f32,
    /// `L_perturbed` (absent when the perturbed pass is skipped).
    pub loss_perturbed: Option<f32>,
    /// `L = (1−α)·L_clean + α·L_perturbed`.
    pub loss_total: f32,
    /// Shallow features `f`.
    pub features: Tensor,
    /// Per-sample, per-channel mean.
    pub mu: Tensor,
    /// Per-sample, per-channel standard deviation.
    pub sigma: Tensor,
    /// `∂L_clean/∂mu`.
    pub grad_mu: Tensor,
    /// `∂L_clean/∂sigma`.
    pub grad_sigma: Tensor,
    /// Perturbation of mu.
    pub delta_mu: Tensor,
    /// Perturbation of sigma.
    pub delta_sigma: Tensor,
    /// Gradients of `L` for the model's trainable parameters.
    pub grads: GradStore,
}

/// Per-sample, per-channel statistics over H×W: `(mu, sigma, n)`.
pub fn statistics(f: &Tensor) -> Result<(Tensor, Tensor, Tensor)> {
    let (n, c, h, w) = f.dims4()?;
    let flat = f.reshape((n, c, h * w))?;
    let mu = flat.mean_keepdim(D::Minus1)?;
    let centred = flat.broadcast_sub(&mu)?;
    let var = centred.sqr()?.mean_keepdim(D::Minus1)?;
    let sigma = (var + 1e-6)?.sqrt()?;
    let norm = centred.broadcast_div(&sigma)?.reshape((n, c, h, w))?;
    Ok((
        mu.reshape((n, c, 1, 1))?,
        sigma.reshape((n, c, 1, 1))?,
        norm,
    ))
}

/// Runs the PIM step: both passes, both backward passes, combined parameter gradients.
///
/// `seed` fixes the dropout/stochastic-depth masks (identical in both passes) and the random
/// direction of the control experiment.
///
/// ```
/// use candle_core::{Device, Tensor};
/// use dfr_model::{Arch, EfficientNet, EfficientNetConfig};
/// use dfr_train::config::GradRegConfig;
/// use dfr_train::pim::{labels_tensor, pim_step};
///
/// let dev = Device::Cpu;
/// let model = EfficientNet::new(EfficientNetConfig::new(Arch::B0, 2), &dev, 0)?;
/// model.set_stages_trainable(1, false); // the shallow part is frozen, as gradreg trains
/// let x = Tensor::rand(0f32, 1f32, (2, 3, 32, 32), &dev)?; // images in [0, 1]
/// let y = labels_tensor(&[0, 1], &dev)?;
/// let cfg = GradRegConfig { alpha: 0.5, r: 0.05, ..Default::default() };
/// let out = pim_step(&model, &x, &y, None, &cfg, 0)?;
/// // Δμ, Δσ have norm r over the batch (NormScope::Batch), one value per sample and channel
/// let norm = (out.delta_mu.sqr()?.sum_all()? + out.delta_sigma.sqr()?.sum_all()?)?
///     .sqrt()?
///     .to_scalar::<f32>()?;
/// assert!((norm - 0.05).abs() < 1e-4);
/// assert_eq!(out.delta_mu.dims(), &[2, 16, 1, 1]); // stage 1 of B0 has 16 channels
/// // the loss trained on: (1 − α)·clean + α·perturbed
/// let lp = out.loss_perturbed.unwrap();
/// assert!((out.loss_total - (0.5 * out.loss_clean + 0.5 * lp)).abs() < 1e-5);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn pim_step(
    model: &EfficientNet,
    x: &Tensor,
    y: &Tensor,
    class_weights: Option<&Tensor>,
    cfg: &GradRegConfig,
    seed: u64,
) -> Result<PimOutput> {
    let k = cfg.stage;
    let f = model.forward_to_stage(x, k, false)?.detach();
    let (mu, sigma, norm) = statistics(&f)?;
    let probe = Var::zeros(f.shape(), f.dtype(), f.device())?;
    let f_in = f.add(probe.as_tensor())?;
    model.set_seed(seed);
    let logits_clean = model.forward_from_stage(&f_in, k, true)?;
    let l_clean = weighted_cross_entropy(&logits_clean, y, class_weights)?;
    let loss_clean = l_clean.to_scalar::<f32>()?;
    let mut grads = l_clean.backward()?;
    let dldf = grads.remove(probe.as_tensor()).unwrap_or(f.zeros_like()?);
    let (b, c, _, _) = f.dims4()?;
    let grad_mu = dldf
        .flatten_from(2)?
        .sum_keepdim(2)?
        .reshape((b, c, 1, 1))?;
    let grad_sigma = (&dldf * &norm)?
        .flatten_from(2)?
        .sum_keepdim(2)?
        .reshape((b, c, 1, 1))?;
    let (dir_mu, dir_sigma) = match cfg.direction {
        Direction::Gradient => (grad_mu.clone(), grad_sigma.clone()),
        Direction::Random => {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0x5EED_D1EC_7104);
            let mut draw = || -> Result<Tensor> {
                let v: Vec<f32> = (0..b * c)
                    .map(|_| rand_distr::StandardNormal.sample(&mut rng))
                    .collect();
                Tensor::from_vec(v, (b, c, 1, 1), f.device())
            };
            (draw()?, draw()?)
        }
    };
    let sq = (dir_mu.sqr()? + dir_sigma.sqr()?)?;
    let norm_g = match cfg.norm {
        NormScope::Batch => sq.sum_all()?.sqrt()?.reshape((1, 1, 1, 1))?,
        NormScope::Sample => sq
            .flatten_from(1)?
            .sum_keepdim(1)?
            .sqrt()?
            .reshape((b, 1, 1, 1))?,
    }
    .clamp(1e-12f32, f32::MAX)?;
    let scale = norm_g.recip()?.affine(cfg.r, 0.0)?;
    let delta_mu = dir_mu.broadcast_mul(&scale)?.detach();
    let delta_sigma = dir_sigma.broadcast_mul(&scale)?.detach();

    let alpha = cfg.alpha;
    if alpha == 0.0 || cfg.r == 0.0 {
        return Ok(PimOutput {
            logits_clean,
            loss_clean,
            loss_perturbed: None,
            loss_total: loss_clean,
            features: f,
            mu,
            sigma,
            grad_mu,
            grad_sigma,
            delta_mu,
            delta_sigma,
            grads,
        });
    }
    let f_pert = norm
        .broadcast_mul(&(&sigma + &delta_sigma)?)?
        .broadcast_add(&(&mu + &delta_mu)?)?;
    model.set_seed(seed);
    let logits_pert = match cfg.bn_update {
        BnUpdate::Both => model.forward_from_stage(&f_pert, k, true)?,
        BnUpdate::Clean => {
            let saved: Vec<Tensor> = model.named_buffers().iter().map(|(_, b)| b.get()).collect();
            let logits = model.forward_from_stage(&f_pert, k, true);
            for ((_, b), t) in model.named_buffers().iter().zip(saved) {
                b.set(t);
            }
            logits?
        }
    };
    let l_pert = weighted_cross_entropy(&logits_pert, y, class_weights)?;
    let loss_perturbed = l_pert.to_scalar::<f32>()?;
    let grads_pert = l_pert.backward()?;
    for var in model.trainable_vars() {
        let t = var.as_tensor();
        let gc = grads.get(t).cloned();
        let gp = grads_pert.get(t).cloned();
        let combined = match (gc, gp) {
            (Some(a), Some(b)) => ((a * (1.0 - alpha))? + (b * alpha)?)?,
            (Some(a), None) => (a * (1.0 - alpha))?,
            (None, Some(b)) => (b * alpha)?,
            (None, None) => continue,
        };
        grads.insert(t, combined);
    }
    let loss_total = ((1.0 - alpha) * loss_clean as f64 + alpha * loss_perturbed as f64) as f32;
    Ok(PimOutput {
        logits_clean,
        loss_clean,
        loss_perturbed: Some(loss_perturbed),
        loss_total,
        features: f,
        mu,
        sigma,
        grad_mu,
        grad_sigma,
        delta_mu,
        delta_sigma,
        grads,
    })
}

/// The clean step of baseline training with a frozen shallow part run in eval mode (the
/// clean half of [`pim_step`]): logits and the gradients of the loss.
pub fn frozen_shallow_step(
    model: &EfficientNet,
    x: &Tensor,
    y: &Tensor,
    class_weights: Option<&Tensor>,
    stage: usize,
    seed: u64,
) -> Result<(Tensor, f32, GradStore)> {
    let f = model.forward_to_stage(x, stage, false)?.detach();
    model.set_seed(seed);
    let logits = model.forward_from_stage(&f, stage, true)?;
    let loss = weighted_cross_entropy(&logits, y, class_weights)?;
    let value = loss.to_scalar::<f32>()?;
    let grads = loss.backward()?;
    Ok((logits, value, grads))
}

/// One plain training step (the `baseline` strategy with every layer trainable): the whole
/// model in train mode (batch-statistics BatchNorm, running statistics updated once; dropout
/// and stochastic depth drawn from `seed`), class-weighted cross-entropy, backward.
/// Returns the logits, the loss and the gradients; the optimiser step is the caller's.
pub fn baseline_step(
    model: &EfficientNet,
    x: &Tensor,
    y: &Tensor,
    class_weights: Option<&Tensor>,
    seed: u64,
) -> Result<(Tensor, f32, GradStore)> {
    model.set_seed(seed);
    let logits = model.forward_t(x, true)?;
    let loss = weighted_cross_entropy(&logits, y, class_weights)?;
    let value = loss.to_scalar::<f32>()?;
    let grads = loss.backward()?;
    Ok((logits, value, grads))
}

/// Casts labels to the `u32` tensor the loss expects.
pub fn labels_tensor(labels: &[u32], device: &candle_core::Device) -> Result<Tensor> {
    Tensor::from_slice(labels, labels.len(), device)?.to_dtype(DType::U32)
}
