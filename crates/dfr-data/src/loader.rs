//! Deterministic, parallel, prefetching batching.
//!
//! The order of an epoch is a shuffle keyed by `(seed, epoch)`; the augmentation parameters of
//! a sample are keyed by `(seed, epoch, sample index)`. Decoding and augmentation run on a
//! rayon pool, a window of batches at a time, on a producer thread that feeds a bounded
//! channel: memory is bounded by `2·prefetch` batches and batches are identical whatever the
//! thread count.

use crate::bad::BadFiles;
use crate::decode::decode_rgb8;
use crate::error::{DataError, Result};
use crate::image::ImageF32;
use crate::rng::{domain, stream};
use crate::sample::{Sample, Split};
use crate::Transform;
use crossbeam_channel::{bounded, Receiver};
use rand::seq::SliceRandom;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Batching options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoaderConfig {
    /// Images per batch.
    pub batch_size: usize,
    /// Shuffle the order every epoch.
    pub shuffle: bool,
    /// Drop a last, incomplete batch.
    pub drop_last: bool,
    /// Seed of every random choice.
    pub seed: u64,
    /// Worker threads (0: all cores).
    pub threads: usize,
    /// Batches decoded ahead of the consumer.
    pub prefetch: usize,
}

impl Default for LoaderConfig {
    fn default() -> Self {
        LoaderConfig {
            batch_size: 4,
            shuffle: true,
            drop_last: false,
            seed: 42,
            threads: 0,
            prefetch: 8,
        }
    }
}

/// A batch of images in NCHW `f32` layout, values in `[0, 1]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// `n·3·size·size` values.
    pub images: Vec<f32>,
    /// `[n, 3, size, size]`.
    pub shape: [usize; 4],
    /// Class indices (real = 0, fake = 1).
    pub labels: Vec<u32>,
    /// Indices of the samples in the loader's sample list.
    pub indices: Vec<usize>,
    /// Position of the batch in its epoch (0-based, counting batches whose images were all
    /// unreadable and so never delivered): resume by skipping `position + 1` batches.
    pub position: usize,
}

impl Batch {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether the batch holds no image.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
}

/// Loads one split's samples as batches.
pub struct Loader {
    samples: Arc<Vec<Sample>>,
    transform: Arc<Transform>,
    config: LoaderConfig,
    split: Split,
    max_bad_fraction: f64,
    bad: Arc<BadFiles>,
    pool: Arc<rayon::ThreadPool>,
}

impl Loader {
    /// A loader over `samples` (all of one split).
    pub fn new(
        samples: Vec<Sample>,
        split: Split,
        transform: Transform,
        config: LoaderConfig,
        max_bad_fraction: f64,
    ) -> Result<Self> {
        if config.batch_size == 0 {
            return Err(DataError::config("batch_size", "must be at least 1"));
        }
        if let Transform::Train(a) = &transform {
            a.validate()?;
        }
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(config.threads)
            .thread_name(|i| format!("dfr-data-{i}"))
            .build()
            .map_err(|e| DataError::config("threads", e.to_string()))?;
        Ok(Loader {
            samples: Arc::new(samples),
            transform: Arc::new(transform),
            config,
            split,
            max_bad_fraction,
            bad: Arc::new(BadFiles::default()),
            pool: Arc::new(pool),
        })
    }

    /// The samples, in index order.
    pub fn samples(&self) -> &[Sample] {
        &self.samples
    }

    /// Unreadable files seen so far.
    pub fn bad_files(&self) -> &BadFiles {
        &self.bad
    }

    /// The configuration.
    pub fn config(&self) -> &LoaderConfig {
        &self.config
    }

    /// Number of batches per epoch (before skipping bad files).
    pub fn num_batches(&self) -> usize {
        let (n, b) = (self.samples.len(), self.config.batch_size);
        if self.config.drop_last {
            n / b
        } else {
            n.div_ceil(b)
        }
    }

    /// Sample order of an epoch.
    pub fn order(&self, epoch: u64) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.samples.len()).collect();
        if self.config.shuffle {
            order.shuffle(&mut stream(&[domain::SHUFFLE, self.config.seed, epoch]));
        }
        order
    }

    /// Decodes and transforms sample `index` for `epoch`.
    pub fn load_one(&self, epoch: u64, index: usize) -> Result<ImageF32> {
        load_sample(
            &self.samples,
            &self.transform,
            self.config.seed,
            epoch,
            index,
        )
    }

    /// Iterates the batches of an epoch, skipping `skip` batches at the start (for resuming
    /// mid-epoch: pass the last processed [`Batch::position`] + 1). A batch whose images are
    /// all unreadable is not delivered, but still counts as a position. Decoding runs ahead
    /// on the loader's thread pool.
    pub fn epoch(&self, epoch: u64, skip: usize) -> EpochIter {
        let order = self.order(epoch);
        let b = self.config.batch_size;
        let mut batches: Vec<Vec<usize>> = order.chunks(b).map(|c| c.to_vec()).collect();
        if self.config.drop_last && batches.last().is_some_and(|l| l.len() < b) {
            batches.pop();
        }
        let batches: Vec<(usize, Vec<usize>)> =
            batches.into_iter().enumerate().skip(skip).collect();
        let window = self.config.prefetch.max(1);
        let (tx, rx) = bounded::<Result<Batch>>(window);
        let samples = Arc::clone(&self.samples);
        let transform = Arc::clone(&self.transform);
        let bad = Arc::clone(&self.bad);
        let pool = Arc::clone(&self.pool);
        let (seed, split, max_bad) = (self.config.seed, self.split, self.max_bad_fraction);
        let size = transform.size() as usize;
        let handle = std::thread::spawn(move || {
            for group in batches.chunks(window) {
                let flat: Vec<usize> = group.iter().flat_map(|(_, b)| b).copied().collect();
                let loaded: Vec<Option<ImageF32>> = pool.install(|| {
                    flat.par_iter()
                        .map(|&i| {
                            if bad.contains(i) {
                                return None;
                            }
                            match load_sample(&samples, &transform, seed, epoch, i) {
                                Ok(img) => Some(img),
                                Err(e) => {
                                    bad.record(i, samples[i].path.clone(), e.to_string());
                                    None
                                }
                            }
                        })
                        .collect()
                });
                if let Err(e) = bad.check(split.name(), samples.len(), max_bad) {
                    let _ = tx.send(Err(e));
                    return;
                }
                let mut it = loaded.into_iter();
                for (position, idx) in group {
                    let mut batch = Batch {
                        images: Vec::with_capacity(idx.len() * 3 * size * size),
                        shape: [0, 3, size, size],
                        labels: Vec::with_capacity(idx.len()),
                        indices: Vec::with_capacity(idx.len()),
                        position: *position,
                    };
                    for &i in idx {
                        if let Some(img) = it.next().flatten() {
                            batch.images.extend_from_slice(&img.data);
                            batch.labels.push(samples[i].label.index() as u32);
                            batch.indices.push(i);
                        }
                    }
                    batch.shape[0] = batch.labels.len();
                    if batch.is_empty() {
                        continue;
                    }
                    if tx.send(Ok(batch)).is_err() {
                        return; // consumer dropped the iterator
                    }
                }
            }
        });
        EpochIter {
            rx,
            handle: Some(handle),
        }
    }
}

fn load_sample(
    samples: &[Sample],
    transform: &Transform,
    seed: u64,
    epoch: u64,
    index: usize,
) -> Result<ImageF32> {
    let s = &samples[index];
    let rgb = decode_rgb8(&s.path)?;
    let mut rng = stream(&[domain::AUGMENT, seed, epoch, index as u64]);
    transform.apply(&rgb, &mut rng)
}

/// Iterator over the batches of one epoch.
pub struct EpochIter {
    rx: Receiver<Result<Batch>>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Iterator for EpochIter {
    type Item = Result<Batch>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.rx.recv() {
            Ok(b) => Some(b),
            Err(_) => {
                if let Some(h) = self.handle.take() {
                    if h.join().is_err() {
                        return Some(Err(DataError::config(
                            "loader",
                            "the loader thread panicked",
                        )));
                    }
                }
                None
            }
        }
    }
}

impl Drop for EpochIter {
    fn drop(&mut self) {
        // Dropping the receiver makes the producer's next send fail, so it stops.
        let (_, dead) = bounded(0);
        self.rx = dead;
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}
