//! The attacked problem: a validated host copy of the batch, the loss an attack
//! climbs (CE of the label, or −CE of a target), one forward + backward pass for its
//! input gradient, and the per-sample gradient diagnostics.

use candle_core::{DType, Device, Tensor, Var, D};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::params::{AttackKind, AttackParams, Goal};
use crate::classifier::Classifier;
use crate::error::{AttackError, Result};

/// Per-sample gradient diagnostics of one attack run (possible gradient masking).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GradStats {
    /// Gradient evaluations (forward + backward passes) per sample.
    pub evaluations: usize,
    /// Samples whose input gradient was exactly zero at the first evaluation.
    pub zero_at_start: Vec<bool>,
    /// Number of evaluations at which a sample's gradient was exactly zero.
    pub zero_count: Vec<usize>,
    /// Samples whose gradient was NaN or infinite at some evaluation.
    pub non_finite: Vec<bool>,
}

impl GradStats {
    fn new(n: usize) -> Self {
        Self {
            evaluations: 0,
            zero_at_start: vec![false; n],
            zero_count: vec![0; n],
            non_finite: vec![false; n],
        }
    }

    /// Samples flagged as possibly masked (zero gradient at the start or a
    /// non-finite gradient anywhere).
    pub fn masked(&self) -> Vec<bool> {
        self.zero_at_start
            .iter()
            .zip(&self.non_finite)
            .map(|(a, b)| *a || *b)
            .collect()
    }
}

/// One forward + backward at `x`.
pub(super) struct GradEval {
    pub grad: Vec<f32>,
    /// Per-sample objective (CE of the label, or −CE of the target).
    pub loss: Vec<f32>,
    /// Per-sample argmax of the logits.
    pub pred: Vec<u32>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Reduction {
    /// Mean (or weighted mean) over the batch, as torchattacks.
    Mean,
    /// Sum over the batch, as the APGD reference implementation.
    Sum,
}

/// Everything an attack loop needs: the model, the clean batch on the host, the
/// objective, and the gradient diagnostics it accumulates.
pub(super) struct Problem<'a, M: Classifier + ?Sized> {
    model: &'a M,
    /// The parameters of the run.
    pub params: &'a AttackParams,
    /// Clean images, flattened `(N, per)`.
    pub x: Vec<f32>,
    /// Samples in the batch.
    pub n: usize,
    /// Values per sample.
    pub per: usize,
    /// Ids keying each sample's random-start noise.
    pub ids: Vec<u64>,
    dims: Vec<usize>,
    device: Device,
    labels: &'a [u32],
    goal: Goal<'a>,
    ce_labels: Tensor,
    weights: Option<Tensor>,
    reduction: Reduction,
    num_classes: usize,
    /// Diagnostics of every gradient evaluation so far.
    pub stats: GradStats,
}

impl<'a, M: Classifier + ?Sized> Problem<'a, M> {
    /// Validates the inputs and copies the batch to the host.
    pub fn new(
        model: &'a M,
        params: &'a AttackParams,
        images: &Tensor,
        labels: &'a [u32],
        goal: Goal<'a>,
        sample_ids: Option<&[u64]>,
    ) -> Result<Self> {
        params.validate()?;
        let (dims, x) = host_images(images)?;
        let n = dims[0];
        let per = x.len() / n;
        let device = images.device().clone();
        let ids: Vec<u64> = match sample_ids {
            Some(ids) if ids.len() == n => ids.to_vec(),
            Some(ids) => {
                return Err(AttackError::InvalidInput(format!(
                    "{} sample ids for a batch of {n} images",
                    ids.len()
                )))
            }
            None => (0..n as u64).collect(),
        };
        // Number of classes: declared, else from one forward pass.
        let num_classes = match model.num_classes() {
            Some(k) => k,
            None => {
                let first = Tensor::from_slice(&x[..per], &dims[1..], &device)?.unsqueeze(0)?;
                logits_dims(&model.logits(&first)?)?.1
            }
        };
        if num_classes < 2 {
            return Err(AttackError::ClassMismatch {
                expected: 2,
                found: num_classes,
            });
        }
        check_labels(labels, n, num_classes, "labels")?;
        let ce_labels = match goal {
            Goal::Untargeted => labels,
            Goal::Targeted(t) => {
                check_labels(t, n, num_classes, "targets")?;
                t
            }
        };
        let weights = match &params.class_weights {
            Some(w) if w.len() != num_classes => {
                return Err(AttackError::param(
                    "class_weights",
                    format!("{} weights for {num_classes} classes", w.len()),
                ))
            }
            Some(w) => Some(Tensor::from_slice(w.as_slice(), w.len(), &device)?),
            None => None,
        };
        let reduction = if params.kind == AttackKind::Apgd {
            Reduction::Sum
        } else {
            Reduction::Mean
        };
        Ok(Self {
            model,
            params,
            ce_labels: Tensor::from_slice(ce_labels, n, &device)?,
            x,
            n,
            per,
            ids,
            dims,
            device,
            labels,
            goal,
            weights,
            reduction,
            num_classes,
            stats: GradStats::new(n),
        })
    }

    /// Host values as a tensor of the batch's shape and device.
    pub fn tensor(&self, data: &[f32]) -> Result<Tensor> {
        Ok(Tensor::from_slice(
            data,
            self.dims.as_slice(),
            &self.device,
        )?)
    }

    /// Whether prediction `pred` of sample `i` reaches the goal.
    pub fn succeeded(&self, pred: u32, i: usize) -> bool {
        match self.goal {
            Goal::Untargeted => pred != self.labels[i],
            Goal::Targeted(t) => pred == t[i],
        }
    }

    fn targeted(&self) -> bool {
        matches!(self.goal, Goal::Targeted(_))
    }

    /// One forward + backward pass at `x`: input gradient, per-sample objective and
    /// prediction; updates [`Problem::stats`].
    pub fn eval(&mut self, x: &[f32]) -> Result<GradEval> {
        let (n, per) = (self.n, self.per);
        let xv = Var::from_tensor(&self.tensor(x)?)?;
        let logits = self.model.logits(xv.as_tensor())?;
        let (ln, lk) = logits_dims(&logits)?;
        if ln != n || lk != self.num_classes {
            return Err(AttackError::InvalidInput(format!(
                "the model returned logits of shape {:?}, expected ({n}, {})",
                logits.dims(),
                self.num_classes
            )));
        }
        let logits = logits.to_dtype(DType::F32)?;
        let logp = candle_nn::ops::log_softmax(&logits, D::Minus1)?;
        let nll = logp
            .gather(&self.ce_labels.unsqueeze(1)?, 1)?
            .squeeze(1)?
            .neg()?;
        let ce = match (&self.weights, self.reduction) {
            (None, Reduction::Mean) => nll.mean_all()?,
            (None, Reduction::Sum) => nll.sum_all()?,
            (Some(w), red) => {
                let wi = w.index_select(&self.ce_labels, 0)?;
                let s = (&nll * &wi)?.sum_all()?;
                match red {
                    Reduction::Mean => s.broadcast_div(&wi.sum_all()?)?,
                    Reduction::Sum => s,
                }
            }
        };
        let targeted = self.targeted();
        let objective = if targeted { ce.neg()? } else { ce };
        let grads = objective.backward()?;
        let grad: Vec<f32> = match grads.get(xv.as_tensor()) {
            Some(g) => g.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?,
            // The logits do not depend on the input at all.
            None => vec![0.0; n * per],
        };
        let nll: Vec<f32> = nll.to_vec1()?;
        let loss = if targeted {
            nll.iter().map(|v| -v).collect()
        } else {
            nll
        };
        let pred: Vec<u32> = logits.argmax(D::Minus1)?.to_vec1()?;
        let stats = &mut self.stats;
        let first = stats.evaluations == 0;
        for i in 0..n {
            let g = &grad[i * per..(i + 1) * per];
            let mut zero = true;
            let mut finite = true;
            for v in g {
                zero &= *v == 0.0;
                finite &= v.is_finite();
            }
            if zero {
                stats.zero_count[i] += 1;
                if first {
                    stats.zero_at_start[i] = true;
                }
            }
            if !finite {
                stats.non_finite[i] = true;
            }
        }
        stats.evaluations += 1;
        Ok(GradEval { grad, loss, pred })
    }
}

/// Uniform noise in [-eps, eps) for sample `id`, from the stream `(seed, id)`.
pub(super) fn uniform_noise(seed: u64, id: u64, len: usize, eps: f32) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(id);
    (0..len)
        .map(|_| (rng.random::<f32>() * 2.0 - 1.0) * eps)
        .collect()
}

/// sign() with sign(0) = sign(NaN) = 0.
#[inline]
pub(super) fn sign(v: f32) -> f32 {
    f32::from(v > 0.0) - f32::from(v < 0.0)
}

fn logits_dims(l: &Tensor) -> Result<(usize, usize)> {
    l.dims2().map_err(|_| {
        AttackError::InvalidInput(format!(
            "the model returned logits of shape {:?}, expected (N, classes)",
            l.dims()
        ))
    })
}

/// Validates a batch of images `(N, C, H, W)` in [0, 1] and copies it to the host.
fn host_images(images: &Tensor) -> Result<(Vec<usize>, Vec<f32>)> {
    let dims = images.dims().to_vec();
    if dims.len() != 4 || dims.contains(&0) {
        return Err(AttackError::InvalidInput(format!(
            "images must be a non-empty (N, C, H, W) tensor, got shape {dims:?}"
        )));
    }
    if images.dtype() != DType::F32 {
        return Err(AttackError::InvalidInput(format!(
            "images must be f32, got {:?}",
            images.dtype()
        )));
    }
    let x: Vec<f32> = images.flatten_all()?.to_vec1()?;
    if let Some(bad) = x.iter().find(|v| !(0.0..=1.0).contains(*v)) {
        return Err(AttackError::InvalidInput(format!(
            "image values must be finite and in [0, 1], found {bad}"
        )));
    }
    Ok((dims, x))
}

fn check_labels(labels: &[u32], n: usize, classes: usize, what: &str) -> Result<()> {
    if labels.len() != n {
        return Err(AttackError::InvalidInput(format!(
            "{} {what} for a batch of {n} images",
            labels.len()
        )));
    }
    if let Some(bad) = labels.iter().find(|l| **l as usize >= classes) {
        return Err(AttackError::InvalidInput(format!(
            "{what} {bad} out of range for a model with {classes} classes"
        )));
    }
    Ok(())
}
