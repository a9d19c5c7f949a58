//! Small perceptual colour maps (piecewise-linear over a few anchors).

use plotters::style::RGBColor;

/// A colour map from `[0, 1]` to RGB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Colormap {
    /// matplotlib's viridis (dark purple → yellow); the heatmap default.
    #[default]
    Viridis,
    /// White → dark blue; used for confusion matrices.
    Blues,
    /// Blue → cyan → yellow → red, as is usual for Grad-CAM overlays.
    Jet,
}

const VIRIDIS: [[u8; 3]; 9] = [
    [68, 1, 84],
    [71, 44, 122],
    [59, 81, 139],
    [44, 113, 142],
    [33, 144, 141],
    [39, 173, 129],
    [92, 200, 99],
    [170, 220, 50],
    [253, 231, 37],
];

const BLUES: [[u8; 3]; 9] = [
    [247, 251, 255],
    [222, 235, 247],
    [198, 219, 239],
    [158, 202, 225],
    [107, 174, 214],
    [66, 146, 198],
    [33, 113, 181],
    [8, 81, 156],
    [8, 48, 107],
];

const JET: [[u8; 3]; 9] = [
    [0, 0, 143],
    [0, 0, 255],
    [0, 127, 255],
    [0, 255, 255],
    [127, 255, 127],
    [255, 255, 0],
    [255, 127, 0],
    [255, 0, 0],
    [127, 0, 0],
];

impl Colormap {
    /// Colour of `t` (clamped to `[0, 1]`; NaN maps to 0).
    pub fn rgb(self, t: f64) -> [u8; 3] {
        let anchors: &[[u8; 3]] = match self {
            Colormap::Viridis => &VIRIDIS,
            Colormap::Blues => &BLUES,
            Colormap::Jet => &JET,
        };
        let t = if t.is_nan() { 0.0 } else { t.clamp(0.0, 1.0) };
        let pos = t * (anchors.len() - 1) as f64;
        let i = (pos.floor() as usize).min(anchors.len() - 2);
        let f = pos - i as f64;
        let mut out = [0u8; 3];
        for (k, o) in out.iter_mut().enumerate() {
            let a = f64::from(anchors[i][k]);
            let b = f64::from(anchors[i + 1][k]);
            *o = (a + (b - a) * f).round().clamp(0.0, 255.0) as u8;
        }
        out
    }

    pub(crate) fn color(self, t: f64) -> RGBColor {
        let [r, g, b] = self.rgb(t);
        RGBColor(r, g, b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_and_clamping() {
        assert_eq!(Colormap::Viridis.rgb(0.0), [68, 1, 84]);
        assert_eq!(Colormap::Viridis.rgb(1.0), [253, 231, 37]);
        assert_eq!(Colormap::Viridis.rgb(7.0), [253, 231, 37]);
        assert_eq!(Colormap::Blues.rgb(-1.0), [247, 251, 255]);
        assert_eq!(Colormap::Jet.rgb(f64::NAN), [0, 0, 143]);
    }
}
