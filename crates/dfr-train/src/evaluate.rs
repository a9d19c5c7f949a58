//! Eval-mode scoring of a split.

use crate::error::Result;
use candle_core::{Device, Tensor};
use dfr_data::Loader;
use dfr_model::EfficientNet;

/// Scores of one pass over a loader.
#[derive(Debug, Clone, Default)]
pub struct Scores {
    /// Probability of "fake" per image.
    pub fake_prob: Vec<f32>,
    /// Labels.
    pub labels: Vec<u32>,
    /// Sample indices.
    pub indices: Vec<usize>,
    /// Mean (optionally class-weighted) cross-entropy.
    pub loss: f64,
}

/// Runs the model in eval mode over one epoch of `loader` (its order, epoch 0).
pub fn score(
    model: &EfficientNet,
    loader: &Loader,
    device: &Device,
    class_weights: Option<&Tensor>,
) -> Result<Scores> {
    let mut out = Scores::default();
    let (mut loss_num, mut loss_den) = (0.0f64, 0.0f64);
    for batch in loader.epoch(0, 0) {
        let b = batch?;
        let x = Tensor::from_vec(b.images, b.shape.to_vec(), device)?;
        let logits = model.forward_t(&x, false)?;
        let y = crate::pim::labels_tensor(&b.labels, device)?;
        let loss = dfr_model::loss::weighted_cross_entropy(&logits, &y, class_weights)?
            .to_scalar::<f32>()? as f64;
        let w: f64 = match class_weights {
            Some(cw) => {
                let cw = cw.to_vec1::<f32>()?;
                b.labels.iter().map(|&l| cw[l as usize] as f64).sum()
            }
            None => b.labels.len() as f64,
        };
        loss_num += loss * w;
        loss_den += w;
        let probs = candle_nn::ops::softmax_last_dim(&logits)?.to_vec2::<f32>()?;
        out.fake_prob.extend(probs.iter().map(|p| p[1]));
        out.labels.extend(b.labels);
        out.indices.extend(b.indices);
    }
    out.loss = if loss_den > 0.0 {
        loss_num / loss_den
    } else {
        0.0
    };
    Ok(out)
}
