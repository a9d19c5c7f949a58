//! EfficientNet real/fake detector on candle.
//!
//! - [`EfficientNet`]: B0–B7 (torchvision) and Lite0–4, train/eval mode with
//!   updatable BatchNorm running statistics, seedable dropout / stochastic depth,
//!   split points ([`EfficientNet::forward_to_stage`], [`EfficientNet::forward_from_stage`],
//!   [`EfficientNet::forward_with_features`]); images in [0, 1], normalisation inside.
//! - [`depthwise`]: a fast CPU depthwise convolution custom op with its own backward
//!   (weight gradient skipped for constant weights).
//! - [`weights`]: loading torchvision / timm / efficientnet_pytorch weights from
//!   safetensors, `.pth` or `hf:ORG/REPO[/FILE]`.
//! - [`batch_norm`], [`squeeze_excite`]: fused CPU ops (BN + activation, the whole SE block)
//!   with hand-written backward passes.
//! - [`runtime`]: the thread pool and allocator settings a training process should run with.
//! - [`checkpoint`]: atomic safetensors checkpoints with metadata.
//! - [`loss::weighted_cross_entropy`], [`predict_probs`], [`parity::run_parity`].

pub mod batch_norm;
pub mod checkpoint;
pub mod config;
mod conv_bn;
#[cfg(feature = "cuda")]
mod cuda;
pub mod depthwise;
pub mod device;
pub mod efficientnet;
pub mod error;
pub mod fast_math;
mod freeze;
pub mod layers;
pub mod loss;
mod mbconv_eval;
pub mod parity;
pub mod pointwise;
pub mod runtime;
pub mod squeeze_excite;
mod storage;
pub mod weights;

pub use config::{Activation, Arch, BlockModules, BlockSpec, EfficientNetConfig, PaddingMode};
pub use efficientnet::{predict_probs, EfficientNet};
pub use error::{Error, Result};
pub use freeze::FrozenParams;
pub use parity::{run_parity, ParityReport};
