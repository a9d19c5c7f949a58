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
    // No gradient is wanted here: with every parameter frozen the forward records no graph,
    // so each activation is freed as soon as the next layer has read it (PyTorch's no_grad).
    let _frozen = model.freeze();
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

/// Clean metrics of a detector on a whole data set (cross-dataset evaluation, `dfr eval`):
/// frame-level (every image) and, when the samples name their videos, video-level (the
/// mean fake score of each video's frames, DeepfakeBench's protocol).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct DatasetReport {
    /// Images scored (unreadable ones are left out and counted in `bad_images`).
    pub images: usize,
    /// Unreadable images left out.
    pub bad_images: usize,
    /// Every metric over the images (threshold 0.5).
    pub frame: dfr_metrics::BinaryReport,
    /// Videos, when the samples have video ids.
    pub videos: Option<usize>,
    /// Every metric over the videos (mean frame score, threshold 0.5).
    pub video: Option<dfr_metrics::BinaryReport>,
    /// Frame-level accuracy and mean fake score per source (method).
    pub per_source: Vec<SourceScores>,
}

/// Frame-level figures of one source.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct SourceScores {
    /// Source (method) name.
    pub source: String,
    /// Images.
    pub images: usize,
    /// Accuracy at 0.5.
    pub accuracy: f64,
    /// Mean probability of "fake".
    pub mean_fake_score: f64,
}

/// The fake probability of every readable image of a split, in the order of the samples
/// given (unreadable ones left out and counted), with each image's source and label: what a
/// study needs to compute metrics on any subset of the images (seen and held-out sources).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ScoredSamples {
    /// Position of each scored image in the samples given (unreadable ones are missing).
    pub indices: Vec<usize>,
    /// Source (method) of each scored image.
    pub sources: Vec<String>,
    /// Label of each scored image (0 real, 1 fake).
    pub labels: Vec<u32>,
    /// Probability of "fake" of each scored image.
    pub fake_prob: Vec<f64>,
    /// Unreadable images left out.
    pub bad_images: usize,
}

impl ScoredSamples {
    /// The positions of the images whose source `keep` accepts.
    ///
    /// ```
    /// let s = dfr_train::evaluate::ScoredSamples {
    ///     indices: vec![0, 1, 2],
    ///     sources: vec!["ffhq".into(), "stargan".into(), "faceapp".into()],
    ///     labels: vec![0, 1, 1],
    ///     fake_prob: vec![0.1, 0.9, 0.4],
    ///     bad_images: 0,
    /// };
    /// assert_eq!(s.positions(|src| src != "faceapp"), [0, 1]);
    /// ```
    pub fn positions(&self, keep: impl Fn(&str) -> bool) -> Vec<usize> {
        (0..self.sources.len())
            .filter(|&i| keep(&self.sources[i]))
            .collect()
    }
}

/// Scores `samples` (all of one split) with `model` in eval mode at `size` px: see
/// [`ScoredSamples`].
pub fn score_samples(
    model: &EfficientNet,
    samples: Vec<dfr_data::Sample>,
    split: dfr_data::Split,
    size: u32,
    batch_size: usize,
    max_bad_fraction: f64,
    device: &Device,
) -> Result<ScoredSamples> {
    let (s, loader) = score_loader(
        model,
        samples,
        split,
        size,
        batch_size,
        max_bad_fraction,
        device,
    )?;
    let all = loader.samples();
    // the loader's order is the samples' order (no shuffle), but say so by index
    let mut order: Vec<usize> = (0..s.indices.len()).collect();
    order.sort_by_key(|&k| s.indices[k]);
    Ok(ScoredSamples {
        indices: order.iter().map(|&k| s.indices[k]).collect(),
        sources: order
            .iter()
            .map(|&k| all[s.indices[k]].method.clone())
            .collect(),
        labels: order.iter().map(|&k| s.labels[k]).collect(),
        fake_prob: order.iter().map(|&k| f64::from(s.fake_prob[k])).collect(),
        bad_images: loader.bad_files().len(),
    })
}

/// One eval-mode pass over `samples` in order.
fn score_loader(
    model: &EfficientNet,
    samples: Vec<dfr_data::Sample>,
    split: dfr_data::Split,
    size: u32,
    batch_size: usize,
    max_bad_fraction: f64,
    device: &Device,
) -> Result<(Scores, Loader)> {
    let loader = Loader::new(
        samples,
        split,
        dfr_data::Transform::Eval(dfr_data::EvalTransform { size }),
        dfr_data::LoaderConfig {
            batch_size,
            shuffle: false,
            drop_last: false,
            ..Default::default()
        },
        max_bad_fraction,
    )?;
    let s = score(model, &loader, device, None)?;
    Ok((s, loader))
}

/// Scores `samples` (all of one split) with `model` at `size` px, `batch_size` at a time,
/// and computes [`DatasetReport`]. Samples must either all have a video id or none
/// (an error names the first one without); both classes must be present.
pub fn evaluate_dataset(
    model: &EfficientNet,
    samples: Vec<dfr_data::Sample>,
    split: dfr_data::Split,
    size: u32,
    batch_size: usize,
    max_bad_fraction: f64,
    device: &Device,
) -> Result<DatasetReport> {
    use crate::error::TrainError;
    let with_video = samples.iter().filter(|s| s.video.is_some()).count();
    if with_video != 0 && with_video != samples.len() {
        let s = samples
            .iter()
            .find(|s| s.video.is_none())
            .expect("one without");
        return Err(TrainError::config(
            "video",
            format!(
                "{} has no video id while {with_video} other frames have one: video-level \
                 metrics need one for every frame",
                s.path.display()
            ),
        ));
    }
    let (s, loader) = score_loader(
        model,
        samples,
        split,
        size,
        batch_size,
        max_bad_fraction,
        device,
    )?;
    let all = loader.samples();
    let scores: Vec<f64> = s.fake_prob.iter().map(|&p| p as f64).collect();
    let frame = dfr_metrics::BinaryReport::compute(&s.labels, &scores, 0.5)?;
    let (videos, video) = if with_video > 0 {
        let ids: Vec<&str> = s
            .indices
            .iter()
            .map(|&i| all[i].video.as_deref().unwrap_or(""))
            .collect();
        let v = dfr_metrics::video_scores(&s.labels, &scores, &ids)?;
        (
            Some(v.videos.len()),
            Some(dfr_metrics::BinaryReport::compute(
                &v.labels, &v.scores, 0.5,
            )?),
        )
    } else {
        (None, None)
    };
    let mut per_source: Vec<SourceScores> = Vec::new();
    for (k, &i) in s.indices.iter().enumerate() {
        let src = &all[i].method;
        let pos = match per_source.iter().position(|p| &p.source == src) {
            Some(p) => p,
            None => {
                per_source.push(SourceScores {
                    source: src.clone(),
                    images: 0,
                    accuracy: 0.0,
                    mean_fake_score: 0.0,
                });
                per_source.len() - 1
            }
        };
        let p = &mut per_source[pos];
        p.images += 1;
        p.accuracy += f64::from(u32::from(scores[k] >= 0.5) == s.labels[k]);
        p.mean_fake_score += scores[k];
    }
    for p in &mut per_source {
        p.accuracy /= p.images as f64;
        p.mean_fake_score /= p.images as f64;
    }
    Ok(DatasetReport {
        images: s.labels.len(),
        bad_images: loader.bad_files().len(),
        frame,
        videos,
        video,
        per_source,
    })
}
