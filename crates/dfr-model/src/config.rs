//! EfficientNet variants and their hyper-parameters.
//!
//! B0–B7 follow torchvision (`torchvision.models.efficientnet_bN`); Lite0–4 follow
//! TensorFlow's EfficientNet-Lite as ported by the `efficientnet_pytorch` family
//! (no squeeze-excitation, ReLU6, fixed 32-channel stem and 1280-channel head,
//! TF "SAME" padding, first and last stage not depth-scaled, BN eps 1e-3,
//! momentum 0.01).

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// An EfficientNet variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Arch {
    /// EfficientNet-B0 (224 px).
    B0,
    /// EfficientNet-B1 (240 px).
    B1,
    /// EfficientNet-B2 (260 px).
    B2,
    /// EfficientNet-B3 (300 px).
    B3,
    /// EfficientNet-B4 (380 px).
    B4,
    /// EfficientNet-B5 (456 px).
    B5,
    /// EfficientNet-B6 (528 px).
    B6,
    /// EfficientNet-B7 (600 px).
    B7,
    /// EfficientNet-Lite0 (224 px).
    Lite0,
    /// EfficientNet-Lite1 (240 px).
    Lite1,
    /// EfficientNet-Lite2 (260 px).
    Lite2,
    /// EfficientNet-Lite3 (280 px).
    Lite3,
    /// EfficientNet-Lite4 (300 px).
    Lite4,
}

impl Arch {
    /// Every variant.
    pub const ALL: [Arch; 13] = [
        Arch::B0,
        Arch::B1,
        Arch::B2,
        Arch::B3,
        Arch::B4,
        Arch::B5,
        Arch::B6,
        Arch::B7,
        Arch::Lite0,
        Arch::Lite1,
        Arch::Lite2,
        Arch::Lite3,
        Arch::Lite4,
    ];

    /// Canonical name, e.g. `efficientnet_b0`, `efficientnet_lite0`.
    pub fn name(self) -> &'static str {
        match self {
            Arch::B0 => "efficientnet_b0",
            Arch::B1 => "efficientnet_b1",
            Arch::B2 => "efficientnet_b2",
            Arch::B3 => "efficientnet_b3",
            Arch::B4 => "efficientnet_b4",
            Arch::B5 => "efficientnet_b5",
            Arch::B6 => "efficientnet_b6",
            Arch::B7 => "efficientnet_b7",
            Arch::Lite0 => "efficientnet_lite0",
            Arch::Lite1 => "efficientnet_lite1",
            Arch::Lite2 => "efficientnet_lite2",
            Arch::Lite3 => "efficientnet_lite3",
            Arch::Lite4 => "efficientnet_lite4",
        }
    }

    /// Whether this is a Lite variant.
    pub fn is_lite(self) -> bool {
        matches!(
            self,
            Arch::Lite0 | Arch::Lite1 | Arch::Lite2 | Arch::Lite3 | Arch::Lite4
        )
    }

    /// (width multiplier, depth multiplier, input resolution, dropout).
    pub fn scaling(self) -> (f64, f64, usize, f64) {
        match self {
            Arch::B0 => (1.0, 1.0, 224, 0.2),
            Arch::B1 => (1.0, 1.1, 240, 0.2),
            Arch::B2 => (1.1, 1.2, 260, 0.3),
            Arch::B3 => (1.2, 1.4, 300, 0.3),
            Arch::B4 => (1.4, 1.8, 380, 0.4),
            Arch::B5 => (1.6, 2.2, 456, 0.4),
            Arch::B6 => (1.8, 2.6, 528, 0.5),
            Arch::B7 => (2.0, 3.1, 600, 0.5),
            Arch::Lite0 => (1.0, 1.0, 224, 0.2),
            Arch::Lite1 => (1.0, 1.1, 240, 0.2),
            Arch::Lite2 => (1.1, 1.2, 260, 0.3),
            Arch::Lite3 => (1.2, 1.4, 280, 0.3),
            Arch::Lite4 => (1.4, 1.8, 300, 0.3),
        }
    }

    /// The native input resolution.
    pub fn resolution(self) -> usize {
        self.scaling().2
    }

    /// (BatchNorm eps, momentum) in PyTorch's convention
    /// (`running = (1 - m) * running + m * batch`).
    pub fn batch_norm(self) -> (f64, f64) {
        match self {
            // torchvision uses the TF-ported values for B5..B7.
            Arch::B5 | Arch::B6 | Arch::B7 => (1e-3, 0.01),
            a if a.is_lite() => (1e-3, 0.01),
            _ => (1e-5, 0.1),
        }
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Arch {
    type Err = Error;

    /// Accepts `efficientnet_b0`, `efficientnet-b0`, `b0`, `tf_efficientnet_lite0`,
    /// `lite0`, … (case-insensitive).
    fn from_str(s: &str) -> Result<Self> {
        let l = s.to_ascii_lowercase().replace('-', "_");
        let l = l.strip_prefix("tf_").unwrap_or(&l);
        let l = l.strip_prefix("efficientnet_").unwrap_or(l);
        Arch::ALL
            .into_iter()
            .find(|a| a.name().strip_prefix("efficientnet_") == Some(l))
            .ok_or_else(|| Error::UnknownArch(s.to_string()))
    }
}

/// Activation function of the convolutional layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// `x * sigmoid(x)` (B0–B7).
    Silu,
    /// `min(max(x, 0), 6)` (Lite).
    Relu6,
}

/// How convolutions are padded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaddingMode {
    /// `k/2` on every side (torchvision, timm).
    Symmetric,
    /// TensorFlow "SAME", computed from the input size (asymmetric for stride 2).
    TfSame,
}

/// Full configuration of an EfficientNet model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EfficientNetConfig {
    /// The variant.
    pub arch: Arch,
    /// Number of output classes (2 for real/fake detection: 0 = real, 1 = fake).
    pub num_classes: usize,
    /// Dropout probability before the classifier (train mode only).
    pub dropout: f64,
    /// Final stochastic-depth probability; block `i` of `n` uses `p * i / n`.
    pub stochastic_depth_prob: f64,
    /// BatchNorm epsilon.
    pub bn_eps: f64,
    /// BatchNorm momentum (PyTorch convention).
    pub bn_momentum: f64,
    /// Per-channel mean subtracted from the [0, 1] input image.
    pub mean: [f32; 3],
    /// Per-channel standard deviation dividing the input image.
    pub std: [f32; 3],
}

/// ImageNet channel mean.
pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];

/// Smallest input side length: the five stride-2 stages leave a 1×1 map at 32 px, and
/// below 16 px the stem's padding dominates the image.
pub const MIN_IMAGE_SIZE: u32 = 16;
/// Largest input side length: DFFD's images are at most 1024 px, and activations grow with
/// the square of the side (B0 at 1024 px already needs ~1 GB per image to train or attack;
/// at 4096 px a single prediction exhausts a 24 GB machine).
pub const MAX_IMAGE_SIZE: u32 = 1024;

/// Checks an input side length against [`MIN_IMAGE_SIZE`] and [`MAX_IMAGE_SIZE`].
pub fn check_image_size(size: u32) -> std::result::Result<(), String> {
    if (MIN_IMAGE_SIZE..=MAX_IMAGE_SIZE).contains(&size) {
        Ok(())
    } else {
        Err(format!(
            "{size} px: must be between {MIN_IMAGE_SIZE} and {MAX_IMAGE_SIZE} (below, the \
             network's stride-2 stages leave nothing to classify; above, activations need more \
             memory than a workstation has: they grow with the square of the side)"
        ))
    }
}
/// ImageNet channel standard deviation.
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

/// One MBConv block.
#[derive(Debug, Clone, PartialEq)]
pub struct BlockSpec {
    /// Stage index (1..=7, torchvision `features.{stage}`).
    pub stage: usize,
    /// Index inside the stage.
    pub index: usize,
    /// Index over all blocks (efficientnet_pytorch `_blocks.{flat}`).
    pub flat: usize,
    /// Expansion ratio (1 = no expansion conv).
    pub expand_ratio: usize,
    /// Depthwise kernel size.
    pub kernel: usize,
    /// Depthwise stride.
    pub stride: usize,
    /// Input channels.
    pub in_ch: usize,
    /// Output channels.
    pub out_ch: usize,
    /// Squeeze-excitation channels (None: no SE).
    pub se_ch: Option<usize>,
    /// Stochastic-depth probability of this block.
    pub sd_prob: f64,
}

impl BlockSpec {
    /// Expanded (hidden) channels.
    pub fn hidden_ch(&self) -> usize {
        self.in_ch * self.expand_ratio
    }

    /// Whether the block has a residual connection.
    pub fn residual(&self) -> bool {
        self.stride == 1 && self.in_ch == self.out_ch
    }

    /// The torchvision module names of the block's layers — the model's internal
    /// names, decided only here (the constructor and the weight-name maps use them).
    ///
    /// ```
    /// use dfr_model::{Arch, EfficientNetConfig};
    /// let stages = EfficientNetConfig::new(Arch::B0, 2).stages();
    /// let first = stages[0][0].module_names(); // stage 1: no expansion conv
    /// assert_eq!(first.expand, None);
    /// assert_eq!(first.depthwise, "features.1.0.block.0");
    /// assert_eq!(first.se.as_deref(), Some("features.1.0.block.1"));
    /// assert_eq!(first.project, "features.1.0.block.2");
    /// assert_eq!(stages[1][0].module_names().project, "features.2.0.block.3");
    /// ```
    pub fn module_names(&self) -> BlockModules {
        let p = format!("features.{}.{}.block", self.stage, self.index);
        let mut k = 0;
        let mut next = || {
            let name = format!("{p}.{k}");
            k += 1;
            name
        };
        let expand = (self.expand_ratio != 1).then(&mut next);
        let depthwise = next();
        let se = self.se_ch.is_some().then(&mut next);
        let project = next();
        BlockModules {
            expand,
            depthwise,
            se,
            project,
        }
    }
}

/// Module names of one MBConv block's layers ([`BlockSpec::module_names`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockModules {
    /// The 1×1 expansion conv + BN (`None` at expansion ratio 1).
    pub expand: Option<String>,
    /// The depthwise conv + BN.
    pub depthwise: String,
    /// The squeeze-excitation (`fc1`, `fc2` below it), if any.
    pub se: Option<String>,
    /// The 1×1 projection conv + BN.
    pub project: String,
}

/// torchvision's `_make_divisible(v, 8)`.
pub fn make_divisible(v: f64, divisor: usize) -> usize {
    let d = divisor as f64;
    let mut new_v = (((v + d / 2.0) as usize) / divisor * divisor).max(divisor);
    if (new_v as f64) < 0.9 * v {
        new_v += divisor;
    }
    new_v
}

/// Base (B0) stages: (expand, kernel, stride, in, out, layers).
const BASE_STAGES: [(usize, usize, usize, usize, usize, usize); 7] = [
    (1, 3, 1, 32, 16, 1),
    (6, 3, 2, 16, 24, 2),
    (6, 5, 2, 24, 40, 2),
    (6, 3, 2, 40, 80, 3),
    (6, 5, 1, 80, 112, 3),
    (6, 5, 2, 112, 192, 4),
    (6, 3, 1, 192, 320, 1),
];

impl EfficientNetConfig {
    /// The reference configuration of `arch` with `num_classes` outputs.
    pub fn new(arch: Arch, num_classes: usize) -> Self {
        let (_, _, _, dropout) = arch.scaling();
        let (bn_eps, bn_momentum) = arch.batch_norm();
        Self {
            arch,
            num_classes,
            dropout,
            stochastic_depth_prob: 0.2,
            bn_eps,
            bn_momentum,
            mean: IMAGENET_MEAN,
            std: IMAGENET_STD,
        }
    }

    /// Same configuration with dropout and stochastic depth off.
    pub fn without_stochastic(mut self) -> Self {
        self.dropout = 0.0;
        self.stochastic_depth_prob = 0.0;
        self
    }

    /// Activation of the variant.
    pub fn activation(&self) -> Activation {
        if self.arch.is_lite() {
            Activation::Relu6
        } else {
            Activation::Silu
        }
    }

    /// Padding mode of the variant.
    pub fn padding_mode(&self) -> PaddingMode {
        if self.arch.is_lite() {
            PaddingMode::TfSame
        } else {
            PaddingMode::Symmetric
        }
    }

    fn width(&self, c: usize) -> usize {
        make_divisible(c as f64 * self.arch.scaling().0, 8)
    }

    /// Stem output channels.
    pub fn stem_channels(&self) -> usize {
        if self.arch.is_lite() {
            32
        } else {
            self.width(32)
        }
    }

    /// Head (last conv) output channels.
    pub fn head_channels(&self) -> usize {
        if self.arch.is_lite() {
            1280
        } else {
            4 * self.width(320)
        }
    }

    /// The MBConv blocks, grouped by stage (index 0 = stage 1).
    pub fn stages(&self) -> Vec<Vec<BlockSpec>> {
        let (_, depth, _, _) = self.arch.scaling();
        let lite = self.arch.is_lite();
        let repeats: Vec<usize> = BASE_STAGES
            .iter()
            .enumerate()
            .map(|(i, s)| {
                if lite && (i == 0 || i == BASE_STAGES.len() - 1) {
                    s.5
                } else {
                    (s.5 as f64 * depth).ceil() as usize
                }
            })
            .collect();
        let total: usize = repeats.iter().sum();
        let mut flat = 0;
        let mut stages = Vec::new();
        for (si, &(e, k, s, cin, cout, _)) in BASE_STAGES.iter().enumerate() {
            let cin = if si == 0 {
                self.stem_channels()
            } else {
                self.width(cin)
            };
            let cout = self.width(cout);
            let mut blocks = Vec::new();
            for j in 0..repeats[si] {
                let in_ch = if j == 0 { cin } else { cout };
                blocks.push(BlockSpec {
                    stage: si + 1,
                    index: j,
                    flat,
                    expand_ratio: e,
                    kernel: k,
                    stride: if j == 0 { s } else { 1 },
                    in_ch,
                    out_ch: cout,
                    se_ch: if lite { None } else { Some((in_ch / 4).max(1)) },
                    sd_prob: self.stochastic_depth_prob * flat as f64 / total as f64,
                });
                flat += 1;
            }
            stages.push(blocks);
        }
        stages
    }

    /// Number of feature stages (stem = 0, MBConv stages 1..=7, head conv = 8).
    pub fn num_stages(&self) -> usize {
        9
    }

    /// Output channels of feature stage `k` (0..=8).
    pub fn stage_channels(&self, k: usize) -> Option<usize> {
        match k {
            0 => Some(self.stem_channels()),
            1..=7 => self.stages()[k - 1].last().map(|b| b.out_ch),
            8 => Some(self.head_channels()),
            _ => None,
        }
    }

    /// Side length of feature stage `k`'s map (0..=8) for a square input of `image_size`
    /// pixels: every strided convolution gives `ceil(n / stride)` with either padding mode
    /// (the stem has stride 2, each stage's first block its own stride, the head none).
    ///
    /// ```
    /// use dfr_model::{Arch, EfficientNetConfig};
    /// let c = EfficientNetConfig::new(Arch::B0, 2);
    /// assert_eq!(c.stage_size(224, 8), Some(7)); // the usual 7×7 Grad-CAM layer
    /// assert_eq!(c.stage_size(64, 8), Some(2)); // too coarse to explain anything
    /// assert_eq!(c.stage_size(64, 3), Some(8));
    /// assert_eq!(c.stage_size(64, 9), None);
    /// ```
    pub fn stage_size(&self, image_size: usize, k: usize) -> Option<usize> {
        if k >= self.num_stages() {
            return None;
        }
        let mut n = image_size.div_ceil(2);
        for stage in self.stages().iter().take(k.min(7)) {
            n = n.div_ceil(stage.first().map_or(1, |b| b.stride));
        }
        Some(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn b0_shapes_match_torchvision() {
        let c = EfficientNetConfig::new(Arch::B0, 2);
        let st = c.stages();
        assert_eq!(
            st.iter().map(|s| s.len()).collect::<Vec<_>>(),
            [1, 2, 2, 3, 3, 4, 1]
        );
        assert_eq!(st[0][0].se_ch, Some(8));
        assert_eq!(st[1][0].se_ch, Some(4));
        assert_eq!(c.head_channels(), 1280);
        assert_eq!(st[6][0].out_ch, 320);
    }

    #[test]
    fn scaled_variants() {
        // torchvision B4: stem 48, head 1792, 32 blocks.
        let c = EfficientNetConfig::new(Arch::B4, 2);
        assert_eq!(c.stem_channels(), 48);
        assert_eq!(c.head_channels(), 1792);
        assert_eq!(c.stages().iter().map(|s| s.len()).sum::<usize>(), 32);
        let c = EfficientNetConfig::new(Arch::B7, 2);
        assert_eq!(c.stem_channels(), 64);
        assert_eq!(c.head_channels(), 2560);
        assert_eq!(c.stages().iter().map(|s| s.len()).sum::<usize>(), 55);
        let l = EfficientNetConfig::new(Arch::Lite4, 1000);
        assert_eq!(l.stem_channels(), 32);
        assert_eq!(l.head_channels(), 1280);
        let r: Vec<_> = l.stages().iter().map(|s| s.len()).collect();
        assert_eq!(r, [1, 4, 4, 6, 6, 8, 1]);
    }

    #[test]
    fn parse_arch() {
        assert_eq!("efficientnet_b3".parse::<Arch>().unwrap(), Arch::B3);
        assert_eq!(
            "tf_efficientnet_lite2".parse::<Arch>().unwrap(),
            Arch::Lite2
        );
        assert_eq!("B0".parse::<Arch>().unwrap(), Arch::B0);
        assert!("resnet".parse::<Arch>().is_err());
    }
}
