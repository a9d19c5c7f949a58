//! Localisation: how well a map (a Grad-CAM, an attention map) covers the ground-truth
//! manipulation mask of its image, on plain row-major `f32` slices of equal size with
//! values in [0, 1].
//!
//! | metric | range | perfect map | direction |
//! |---|---|---|---|
//! | [`iinc`] (Dang et al.'s Inverse Intersection Non-Containment) | [0, 1] | 0 | **lower** is better |
//! | [`pbca`] (pixel-wise binary classification accuracy) | [0, 1] | 1 | **higher** is better |
//! | [`top_k_iou`] (IoU of the map's top-k % pixels with the mask) | [0, 1], `None` for an empty mask | 1 | **higher** is better |
//!
//! The definitions are those of Dang et al., "On the Detection of Digital Face
//! Manipulation", CVPR 2020, Sec. 5 (the IINC equation; PBCA), read in the paper; its
//! public code (`JStehouwer/FFD_CVPR2020`, `eval.py`) computes PBCA as the share of pixels
//! where `map ≥ 0.5` agrees with `mask ≥ 0.5` and has no IINC. Real images have all-zero
//! masks (the public `dataset.py` feeds zeros for them), so for a real image a perfect map
//! is empty. The reference values in `tests/data/localisation_reference.json` come from an
//! independent numpy implementation of these definitions
//! (`tests/data/make_localisation_reference.py`).

use serde::{Deserialize, Serialize};

use crate::consistency::{iinc_terms, top_indices, top_k_count};
use crate::error::{ExplainError, Result};

/// Threshold of [`pbca`] and of the mask region of [`top_k_iou`] (Dang et al.'s
/// `MASK_THRESHOLD`).
pub const DEFAULT_MASK_THRESHOLD: f32 = 0.5;

/// Default share of pixels, in percent, of the map's region in [`top_k_iou`].
pub const DEFAULT_TOP_K_PERCENT: f64 = 20.0;

fn check_unit(map: &[f32], mask: &[f32]) -> Result<()> {
    if map.len() != mask.len() {
        return Err(ExplainError::invalid(format!(
            "map and mask differ in size: {} vs {} values",
            map.len(),
            mask.len()
        )));
    }
    if map.is_empty() {
        return Err(ExplainError::invalid("empty map and mask"));
    }
    for (what, v) in [("map", map), ("mask", mask)] {
        if let Some(x) = v.iter().find(|x| !(0.0..=1.0).contains(*x)) {
            return Err(ExplainError::invalid(format!(
                "{what} value {x} outside [0, 1] (scale maps to [0, 1] first)"
            )));
        }
    }
    Ok(())
}

/// Dang et al.'s IINC between a map `M_att` and the ground-truth mask `M_gt`, with
/// `I = min(M_att, M_gt)`, `U = max(M_att, M_gt)` element-wise, `|·|` the sum and `Ū` the
/// mean over pixels:
///
/// `IINC = 1/(3 − Ū) · { 0 if both are all zero; 1 if exactly one is; 2 − |I|/|M_att| − |I|/|M_gt| otherwise }`.
///
/// The factor multiplies every case: an empty map on a manipulated image scores
/// `1/(3 − mean(M_gt))` (between 1/3 and 1/2), a non-empty map on a real image
/// `1/(3 − mean(M_att))`. 0 for a map equal to a binary mask; **lower is better**.
/// Errors on unequal sizes and values outside [0, 1].
///
/// ```
/// use dfr_explain::localisation::iinc;
/// let mask = [1.0, 1.0, 0.0, 0.0];
/// assert_eq!(iinc(&mask, &mask)?, 0.0);
/// assert_eq!(iinc(&[0.0; 4], &[0.0; 4])?, 0.0); // real image, empty map
/// // empty map on a fake: 1 / (3 − ½)
/// assert!((iinc(&[0.0; 4], &mask)? - 0.4).abs() < 1e-12);
/// // half overlap: (2 − ½ − ½) / (3 − ¾) = 4/9
/// assert!((iinc(&[0.0, 1.0, 1.0, 0.0], &mask)? - 4.0 / 9.0).abs() < 1e-12);
/// # Ok::<(), dfr_explain::ExplainError>(())
/// ```
pub fn iinc(map: &[f32], mask: &[f32]) -> Result<f64> {
    check_unit(map, mask)?;
    let t = iinc_terms(map, mask)?;
    let factor = 1.0 / (3.0 - t.mean_union);
    Ok(match (t.a_empty, t.b_empty) {
        (true, true) => 0.0,
        (true, false) | (false, true) => factor,
        _ => factor * t.non_containment,
    })
}

/// Pixel-wise binary classification accuracy: the share of pixels where `map ≥ threshold`
/// agrees with `mask ≥ threshold` (Dang et al. use 0.5, [`DEFAULT_MASK_THRESHOLD`]).
/// **Higher is better**; 1 for a map that matches the mask's region.
///
/// ```
/// use dfr_explain::localisation::pbca;
/// let mask = [1.0, 1.0, 0.0, 0.0];
/// assert_eq!(pbca(&[0.9, 0.2, 0.1, 0.7], &mask, 0.5)?, 0.5);
/// # Ok::<(), dfr_explain::ExplainError>(())
/// ```
pub fn pbca(map: &[f32], mask: &[f32], threshold: f32) -> Result<f64> {
    check_unit(map, mask)?;
    check_threshold(threshold)?;
    let agree = map
        .iter()
        .zip(mask)
        .filter(|(&a, &g)| (a >= threshold) == (g >= threshold))
        .count();
    Ok(agree as f64 / map.len() as f64)
}

fn check_threshold(threshold: f32) -> Result<()> {
    if threshold > 0.0 && threshold <= 1.0 {
        Ok(())
    } else {
        Err(ExplainError::invalid(format!(
            "mask threshold {threshold} outside (0, 1]"
        )))
    }
}

/// Intersection over union of the map's `top_k_count(n, percent)` highest pixels (ties:
/// the lower row-major index first) with the mask region `mask ≥ threshold`. `None` when
/// the mask region is empty (a real image: there is nothing to find). **Higher is
/// better**. `percent` must lie in (0, 100].
///
/// ```
/// use dfr_explain::localisation::top_k_iou;
/// let mask = [1.0, 1.0, 0.0, 0.0];
/// // top 50 %: pixels 0 and 3; one of them in the mask of two → 1/3
/// assert_eq!(top_k_iou(&[0.9, 0.2, 0.1, 0.7], &mask, 50.0, 0.5)?, Some(1.0 / 3.0));
/// assert_eq!(top_k_iou(&[0.9, 0.2, 0.1, 0.7], &[0.0; 4], 50.0, 0.5)?, None);
/// # Ok::<(), dfr_explain::ExplainError>(())
/// ```
pub fn top_k_iou(map: &[f32], mask: &[f32], percent: f64, threshold: f32) -> Result<Option<f64>> {
    check_unit(map, mask)?;
    check_threshold(threshold)?;
    if !(percent > 0.0 && percent <= 100.0) {
        return Err(ExplainError::invalid(format!(
            "top-k percentage {percent} outside (0, 100]"
        )));
    }
    let region: Vec<bool> = mask.iter().map(|&g| g >= threshold).collect();
    let in_mask = region.iter().filter(|&&g| g).count();
    if in_mask == 0 {
        return Ok(None);
    }
    let m = top_k_count(map.len(), percent);
    let top = top_indices(map, m);
    let inter = top.iter().zip(&region).filter(|(t, g)| **t && **g).count();
    Ok(Some(inter as f64 / (m + in_mask - inter) as f64))
}

/// Parameters of [`localisation`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LocalisationOptions {
    /// Threshold of PBCA and of the mask region in top-k IoU (0.5).
    pub threshold: f32,
    /// Share of pixels (percent) of the map's top-k region (20).
    pub top_k_percent: f64,
}

impl Default for LocalisationOptions {
    fn default() -> Self {
        Self {
            threshold: DEFAULT_MASK_THRESHOLD,
            top_k_percent: DEFAULT_TOP_K_PERCENT,
        }
    }
}

/// The localisation metrics of one map against its image's mask.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LocalisationReport {
    /// [`iinc`] (lower is better).
    pub iinc: f64,
    /// [`pbca`] (higher is better).
    pub pbca: f64,
    /// [`top_k_iou`] (higher is better); `None` (JSON `null`) for an empty mask.
    pub top_k_iou: Option<f64>,
    /// Whether the map is all zero.
    pub map_empty: bool,
    /// Whether the mask is all zero (a real image).
    pub mask_empty: bool,
}

/// [`iinc`], [`pbca`] and [`top_k_iou`] of one map against one mask.
///
/// ```
/// use dfr_explain::localisation::{localisation, LocalisationOptions};
/// let r = localisation(&[1.0, 1.0, 0.0, 0.0], &[1.0, 1.0, 0.0, 0.0], &LocalisationOptions::default())?;
/// assert_eq!((r.iinc, r.pbca, r.map_empty, r.mask_empty), (0.0, 1.0, false, false));
/// # Ok::<(), dfr_explain::ExplainError>(())
/// ```
pub fn localisation(
    map: &[f32],
    mask: &[f32],
    opts: &LocalisationOptions,
) -> Result<LocalisationReport> {
    Ok(LocalisationReport {
        iinc: iinc(map, mask)?,
        pbca: pbca(map, mask, opts.threshold)?,
        top_k_iou: top_k_iou(map, mask, opts.top_k_percent, opts.threshold)?,
        map_empty: map.iter().all(|&v| v == 0.0),
        mask_empty: mask.iter().all(|&v| v == 0.0),
    })
}

/// [`localisation`] of each map of a batch against its mask (`maps` and `masks` hold the
/// same number of `height×width` planes, one after another).
pub fn localisation_batch(
    maps: &[f32],
    masks: &[f32],
    height: usize,
    width: usize,
    opts: &LocalisationOptions,
) -> Result<Vec<LocalisationReport>> {
    let hw = height
        .checked_mul(width)
        .filter(|&v| v > 0)
        .ok_or_else(|| ExplainError::invalid(format!("bad map size {height}×{width}")))?;
    if maps.len() != masks.len() || !maps.len().is_multiple_of(hw) {
        return Err(ExplainError::invalid(format!(
            "{} map values and {} mask values are not whole {height}×{width} planes of equal count",
            maps.len(),
            masks.len()
        )));
    }
    maps.chunks_exact(hw)
        .zip(masks.chunks_exact(hw))
        .map(|(m, g)| localisation(m, g, opts))
        .collect()
}

/// Means of [`LocalisationReport`]s over a set of images (e.g. one arm's fakes of one
/// source): IINC and PBCA over every image, top-k IoU over the images with a non-empty
/// mask, and the counts of empty maps and masks.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LocalisationSummary {
    /// Images.
    pub n: usize,
    /// Images whose map is all zero.
    pub map_empty: usize,
    /// Images whose mask is all zero.
    pub mask_empty: usize,
    /// Mean IINC (lower is better).
    pub iinc: f64,
    /// Mean PBCA (higher is better).
    pub pbca: f64,
    /// Mean top-k IoU over the images with a non-empty mask; `None` when there is none.
    pub top_k_iou: Option<f64>,
}

impl LocalisationSummary {
    /// Averages `reports`; `None` when there is none.
    ///
    /// ```
    /// use dfr_explain::localisation::{localisation, LocalisationOptions, LocalisationSummary};
    /// let o = LocalisationOptions::default();
    /// let fake = [1.0, 1.0, 0.0, 0.0];
    /// let reports = [
    ///     localisation(&fake, &fake, &o)?,            // a perfect map of a fake
    ///     localisation(&[0.0; 4], &[0.0; 4], &o)?,    // an empty map of a real image
    /// ];
    /// let s = LocalisationSummary::from_reports(&reports).unwrap();
    /// assert_eq!((s.n, s.map_empty, s.mask_empty), (2, 1, 1));
    /// // top 20 % of 4 pixels = 1 pixel, inside the 2-pixel mask: IoU ½ (the real image has none)
    /// assert_eq!((s.iinc, s.pbca, s.top_k_iou), (0.0, 1.0, Some(0.5)));
    /// # Ok::<(), dfr_explain::ExplainError>(())
    /// ```
    pub fn from_reports(reports: &[LocalisationReport]) -> Option<Self> {
        if reports.is_empty() {
            return None;
        }
        let n = reports.len() as f64;
        let ious: Vec<f64> = reports.iter().filter_map(|r| r.top_k_iou).collect();
        Some(Self {
            n: reports.len(),
            map_empty: reports.iter().filter(|r| r.map_empty).count(),
            mask_empty: reports.iter().filter(|r| r.mask_empty).count(),
            iinc: reports.iter().map(|r| r.iinc).sum::<f64>() / n,
            pbca: reports.iter().map(|r| r.pbca).sum::<f64>() / n,
            top_k_iou: (!ious.is_empty()).then(|| ious.iter().sum::<f64>() / ious.len() as f64),
        })
    }
}
