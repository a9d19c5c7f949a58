//! A planar `f32` RGB image, the unit the augmentation works on.

/// A 3-channel image stored planar (CHW), values nominally in `[0, 1]`.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageF32 {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// `3·height·width` values, channel-major (R plane, G plane, B plane).
    pub data: Vec<f32>,
}

impl ImageF32 {
    /// An all-zero image.
    pub fn zeros(width: usize, height: usize) -> Self {
        ImageF32 {
            width,
            height,
            data: vec![0.0; 3 * width * height],
        }
    }

    /// Number of pixels of one plane.
    pub fn plane_len(&self) -> usize {
        self.width * self.height
    }

    /// One colour plane (0 = R, 1 = G, 2 = B).
    pub fn plane(&self, c: usize) -> &[f32] {
        let n = self.plane_len();
        &self.data[c * n..(c + 1) * n]
    }

    /// One colour plane, mutable.
    pub fn plane_mut(&mut self, c: usize) -> &mut [f32] {
        let n = self.plane_len();
        &mut self.data[c * n..(c + 1) * n]
    }

    /// Converts interleaved RGB bytes (`height·width·3`) to a planar image scaled to `[0, 1]`.
    pub fn from_rgb8(width: usize, height: usize, rgb: &[u8]) -> Self {
        assert_eq!(rgb.len(), width * height * 3, "RGB buffer size");
        let n = width * height;
        let mut data = vec![0.0f32; 3 * n];
        let (r, rest) = data.split_at_mut(n);
        let (g, b) = rest.split_at_mut(n);
        for (i, px) in rgb.chunks_exact(3).enumerate() {
            r[i] = px[0] as f32 / 255.0;
            g[i] = px[1] as f32 / 255.0;
            b[i] = px[2] as f32 / 255.0;
        }
        ImageF32 {
            width,
            height,
            data,
        }
    }

    /// Converts to interleaved RGB bytes, clamping to `[0, 1]` and rounding.
    pub fn to_rgb8(&self) -> Vec<u8> {
        let n = self.plane_len();
        let mut out = vec![0u8; 3 * n];
        for c in 0..3 {
            let p = self.plane(c);
            for i in 0..n {
                out[3 * i + c] = (p[i].clamp(0.0, 1.0) * 255.0).round() as u8;
            }
        }
        out
    }
}
