//! A batch to evaluate: images in [0, 1] with labels, sources and sample ids.

use candle_core::Tensor;
use dfr_data::{Batch, Sample};

use crate::error::{AttackError, Result};

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

    /// Keeps the first `n` samples (no-op when the batch is not larger).
    pub fn truncate(&mut self, n: usize) -> Result<()> {
        if self.labels.len() > n {
            self.images = self.images.narrow(0, 0, n)?;
            self.labels.truncate(n);
            self.sources.truncate(n);
            self.ids.truncate(n);
        }
        Ok(())
    }

    /// Checks shapes and labels against an evaluation of `size`×`size` images.
    pub fn check(&self, size: u32) -> Result<()> {
        let b = self;
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
}
