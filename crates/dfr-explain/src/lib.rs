//! Explanations of the real/fake detector and their robustness.
//!
//! - [`mod@gradcam`]: Grad-CAM for any stage of the model (EfficientNet layers 0..=8, or any
//!   [`CamModel`]) and any target class ([`Target`]: the labels, the prediction or a
//!   fixed class), with pytorch-grad-cam's low-resolution map, min-max scaling and
//!   OpenCV bilinear up-sampling ([`CamOutput`]).
//! - [`overlay`]: OpenCV's jet colour map blended over the image exactly as
//!   pytorch-grad-cam's `show_cam_on_image`, written atomically as PNG.
//! - [`mod@consistency`]: agreement of the clean and the adversarial map of one image:
//!   non-containment (the IINC formula between two maps; lower is more consistent),
//!   Pearson correlation, SSIM and top-k % IoU (higher is more consistent), gathered in a
//!   serialisable [`ConsistencyReport`].
//! - [`localisation`]: a map against the ground-truth manipulation mask: Dang et al.'s
//!   IINC (lower is better), PBCA and top-k % IoU with the mask (higher is better).
//! - [`parity`]: checks against the shared reference vectors ([`check_fixtures`]).

pub mod consistency;
pub mod error;
pub mod gradcam;
pub mod localisation;
pub mod overlay;
pub mod parity;

pub use consistency::{
    consistency, consistency_batch, non_containment, pearson, ssim, top_k_iou, ConsistencyMetric,
    ConsistencyOptions, ConsistencyReport, ConsistencySummary, SsimOptions, DEFAULT_TOP_K_PERCENT,
};
pub use error::{ExplainError, Result};
pub use gradcam::{
    gradcam, gradcam_from_features, postprocess_cam, resize_bilinear, scale_map, CamMaps, CamModel,
    CamOutput, FnCamModel, Target,
};
pub use localisation::{
    localisation, localisation_batch, LocalisationOptions, LocalisationReport, LocalisationSummary,
};
pub use overlay::{
    heatmap, jet, overlay_planar, overlay_rgb, overlay_tensor, save_overlay, save_png,
    DEFAULT_IMAGE_WEIGHT,
};
pub use parity::check_fixtures;
