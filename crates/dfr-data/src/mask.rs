//! Ground-truth manipulation masks: where in a fake image the manipulation is.
//!
//! Layout (the DFFD layout extended, beside the images): the mask of
//! `<root>/<source>/<split>/<file>` is `<root>/masks/<source>/<split>/<file>`, a greyscale
//! (or RGB, read as its luma) image of the same size, 255 = manipulated. DFFD ships masks
//! for its manipulated images (Dang et al., CVPR 2020); its public code reads a mask from
//! the same file name in a `Mask/` folder beside `Fake/` and uses zeros for real images —
//! here a real image's mask is all zero whether or not a file exists, and a fake image
//! without a mask file simply has no mask: nothing is lost for data without masks. The
//! synthetic generator writes masks for every fake image ([`crate::synth`]).
//!
//! ```
//! use dfr_data::mask::{load_mask, mask_path, write_mask_png};
//! use std::path::Path;
//! let tmp = tempfile::tempdir()?;
//! let image = tmp.path().join("faceapp/test/faceapp_00000.png");
//! let mask = mask_path(tmp.path(), Path::new("faceapp/test/faceapp_00000.png"));
//! assert_eq!(mask, tmp.path().join("masks/faceapp/test/faceapp_00000.png"));
//! write_mask_png(&mask, 2, 2, &[1.0, 0.0, 0.0, 0.0])?;
//! let m = load_mask(&mask, None, 2)?; // resized as the evaluation resizes images
//! assert_eq!(m, vec![1.0, 0.0, 0.0, 0.0]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::augment::crop::{crop_resize, CropBox};
use crate::decode::{check_header, write_atomic, Rgb8};
use crate::error::{DataError, Result};
use std::path::{Path, PathBuf};

/// The folder under a DFFD root that holds the masks.
pub const MASKS_DIR: &str = "masks";

/// The mask of the image at `relative` (`<source>/<split>/<file>`, relative to `root`).
pub fn mask_path(root: &Path, relative: &Path) -> PathBuf {
    root.join(MASKS_DIR).join(relative)
}

/// Writes a `width×height` mask (values in [0, 1], clamped) as an 8-bit greyscale PNG,
/// atomically; creates the parent folders.
pub fn write_mask_png(path: &Path, width: u32, height: u32, mask: &[f32]) -> Result<()> {
    use image::ImageEncoder;
    if mask.len() != (width as usize) * (height as usize) {
        return Err(DataError::Encode {
            path: path.to_path_buf(),
            message: format!("{} mask values for {width}×{height}", mask.len()),
        });
    }
    let bytes: Vec<u8> = mask
        .iter()
        .map(|&v| (v.clamp(0.0, 1.0) * 255.0).round() as u8)
        .collect();
    let mut buf = Vec::new();
    image::codecs::png::PngEncoder::new(&mut buf)
        .write_image(&bytes, width, height, image::ExtendedColorType::L8)
        .map_err(|e| DataError::Encode {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| DataError::io("creating", dir, e))?;
    }
    write_atomic(path, &buf)
}

/// Reads a mask and resizes it to `size × size` with the evaluation resize of the images
/// ([`crate::EvalTransform`]: antialiased bilinear over the whole image), values in
/// [0, 1]. With `image`, the mask must have that image's size ([`DataError::MaskSize`]);
/// a file that does not decode is [`DataError::Decode`].
pub fn load_mask(path: &Path, image: Option<&Path>, size: u32) -> Result<Vec<f32>> {
    let decoded = image::open(path).map_err(|e| DataError::Decode {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let luma = decoded.into_luma8();
    let (w, h) = luma.dimensions();
    if let Some(img) = image {
        let (iw, ih) = check_header(img)?;
        if (iw, ih) != (w, h) {
            return Err(DataError::MaskSize {
                mask: path.to_path_buf(),
                image: img.to_path_buf(),
                mask_size: format!("{w}×{h}"),
                image_size: format!("{iw}×{ih}"),
            });
        }
    }
    if size == 0 {
        return Err(DataError::config(
            "size",
            "a mask needs a size of at least 1",
        ));
    }
    // the images' own resize, on the mask copied to three channels
    let rgb = Rgb8 {
        width: w,
        height: h,
        data: luma.as_raw().iter().flat_map(|&v| [v, v, v]).collect(),
    };
    let resized = crop_resize(&rgb, CropBox::full(w, h), size, size)?;
    Ok(resized.plane(0).iter().map(|v| v.clamp(0.0, 1.0)).collect())
}

/// Where the mask of a sample comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MaskSource {
    /// A real image: its mask is all zero.
    Real,
    /// A fake image with a mask file.
    File(PathBuf),
    /// A fake image without a mask (the layout has none, or its file is missing).
    Missing,
}

/// The mask of `sample` in a data set read with `cfg`: DFFD trees look under
/// [`MASKS_DIR`]; the folder and CSV layouts have no masks (their fakes are
/// [`MaskSource::Missing`]).
///
/// ```
/// use dfr_data::mask::{mask_source, MaskSource};
/// use dfr_data::{DataConfig, LayoutKind, Label, Sample, Split};
/// let cfg = DataConfig::new("/data/dffd", LayoutKind::Dffd);
/// let real = Sample { path: "/data/dffd/ffhq/test/a.png".into(), label: Label::Real, method: "ffhq".into(), split: Split::Test, video: None };
/// assert_eq!(mask_source(&cfg, &real), MaskSource::Real);
/// let fake = Sample { path: "/data/dffd/faceapp/test/b.png".into(), label: Label::Fake, method: "faceapp".into(), split: Split::Test, video: None };
/// assert_eq!(mask_source(&cfg, &fake), MaskSource::Missing); // no such file here
/// ```
pub fn mask_source(cfg: &crate::DataConfig, sample: &crate::Sample) -> MaskSource {
    if sample.label == crate::Label::Real {
        return MaskSource::Real;
    }
    if cfg.layout != crate::LayoutKind::Dffd {
        return MaskSource::Missing;
    }
    let Ok(rel) = sample.path.strip_prefix(&cfg.root) else {
        return MaskSource::Missing;
    };
    let p = mask_path(&cfg.root, rel);
    if p.is_file() {
        MaskSource::File(p)
    } else {
        MaskSource::Missing
    }
}

/// Whether a DFFD tree has a [`MASKS_DIR`] folder.
pub fn has_masks(root: &Path) -> bool {
    root.join(MASKS_DIR).is_dir()
}
