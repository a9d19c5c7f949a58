//! Data pipeline for deepfake detection research.
//!
//! * [`layout`] — dataset layouts (DFFD official, image folders, CSV manifests) scanned into
//!   [`Sample`]s with a label (real = 0, fake = 1), a generation method and a split.
//! * [`weights`] — class weights `w_c = N / (2·N_c)` for the class-weighted cross-entropy.
//! * [`augment`] — torchvision-equivalent training augmentation and evaluation resizing,
//!   producing `f32` CHW images in `[0, 1]`.
//! * [`loader`] — deterministic, parallel, prefetching batching: every random choice derives
//!   from `(seed, epoch, sample index)`, so batches do not depend on the thread count.
//! * [`synth`] — the synthetic DFFD generator, so that every stage runs offline.
//! * [`mask`] — ground-truth manipulation masks (`<root>/masks/<source>/<split>/<file>`).
//! * [`inspect`] — counts per split × source × label, class weights and bad files.
//!
//! The crate has no tensor-library dependency: batches are plain `Vec<f32>` in NCHW order.

pub mod augment;
pub mod bad;
pub mod decode;
pub mod error;
pub mod image;
pub mod inspect;
pub mod layout;
pub mod loader;
pub mod mask;
pub mod rng;
pub mod sample;
pub mod synth;
pub mod weights;

pub use augment::{EvalTransform, TrainAugment, Transform};
pub use error::{DataError, Result};
pub use image::ImageF32;
pub use layout::{DataConfig, Dataset, LayoutKind, SourceFilter};
pub use loader::{Batch, Loader, LoaderConfig};
pub use sample::{Label, Sample, Split};
pub use weights::ClassWeights;
