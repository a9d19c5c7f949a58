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

/// Writes bytes to `path` through a temporary file in the same directory (unique per process
/// and call), synced, then renamed over `path`, so a reader never sees a partial file; the
/// temporary file is removed on failure.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(
        ".{name}.{}.{}.tmp",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let written = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(DataError::io("writing", &tmp, e));
    }
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        DataError::io("renaming into", path, e)
    })
}
