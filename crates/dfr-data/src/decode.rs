//! Image decoding (PNG/JPEG through the `image` crate) to 8-bit RGB.

use crate::error::{DataError, Result};
use std::path::Path;

/// A decoded 8-bit RGB image, interleaved.
#[derive(Debug, Clone)]
pub struct Rgb8 {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// `height·width·3` bytes.
    pub data: Vec<u8>,
}

/// Reads and decodes an image file to RGB (alpha dropped, grey expanded).
pub fn decode_rgb8(path: &Path) -> Result<Rgb8> {
    let bytes = std::fs::read(path).map_err(|e| DataError::Decode {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    decode_rgb8_bytes(&bytes).map_err(|message| DataError::Decode {
        path: path.to_path_buf(),
        message,
    })
}

/// Reads only an image file's header: its format and dimensions. Catches missing, empty,
/// non-image and header-damaged files cheaply (a file truncated after its header still
/// fails only when decoded).
pub fn check_header(path: &Path) -> Result<(u32, u32)> {
    let err = |message: String| DataError::Decode {
        path: path.to_path_buf(),
        message,
    };
    image::ImageReader::open(path)
        .map_err(|e| err(e.to_string()))?
        .with_guessed_format()
        .map_err(|e| err(e.to_string()))?
        .into_dimensions()
        .map_err(|e| err(e.to_string()))
}

/// Decodes an in-memory image to RGB.
pub fn decode_rgb8_bytes(bytes: &[u8]) -> std::result::Result<Rgb8, String> {
    let img = image::load_from_memory(bytes).map_err(|e| e.to_string())?;
    let rgb = img.into_rgb8();
    let (width, height) = rgb.dimensions();
    if width == 0 || height == 0 {
        return Err("image has zero size".into());
    }
    Ok(Rgb8 {
        width,
        height,
        data: rgb.into_raw(),
    })
}

/// Encodes interleaved RGB bytes as PNG and writes it atomically (temp file + rename).
pub fn write_png_atomic(path: &Path, width: u32, height: u32, rgb: &[u8]) -> Result<()> {
    use image::ImageEncoder;
    let mut buf = Vec::with_capacity(rgb.len() / 2);
    image::codecs::png::PngEncoder::new(&mut buf)
        .write_image(rgb, width, height, image::ExtendedColorType::Rgb8)
        .map_err(|e| DataError::Encode {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
    write_atomic(path, &buf)
}

/// [`dfr_fs::write_atomic`] with this crate's error (naming the file).
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    dfr_fs::write_atomic(path, bytes).map_err(|e| DataError::io("writing", path, e))
}
