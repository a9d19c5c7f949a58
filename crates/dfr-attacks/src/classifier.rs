//! A differentiable image classifier, the only thing the attacks need.

use candle_core::{Device, Result, Tensor};

/// A differentiable classifier: images `(N, C, H, W)` with values in [0, 1] →
/// logits `(N, K)`, in **eval mode** (no batch statistics, no dropout) so that samples
/// of a batch do not influence each other. Any normalisation happens inside.
///
/// Attacks only need input gradients. candle computes the gradient of every tracked
/// tensor of the graph, weights included; an implementation should therefore keep
/// its weights out of the graph while [`Classifier::freeze`]'s guard lives (see the
/// implementation for [`dfr_model::EfficientNet`], whose frozen parameters enter the
/// graph detached, so a backward pass computes no weight gradient at all).
pub trait Classifier {
    /// Eval-mode logits of images in [0, 1].
    fn logits(&self, images: &Tensor) -> Result<Tensor>;

    /// The number of output classes, when known without a forward pass.
    fn num_classes(&self) -> Option<usize> {
        None
    }

    /// The device inputs must be on (default: CPU).
    fn device(&self) -> Device {
        Device::Cpu
    }

    /// Freezes the model's parameters until the returned guard is dropped, so that a
    /// backward pass computes input gradients only (`None`: nothing to freeze).
    fn freeze(&self) -> Option<dfr_model::FrozenParams<'_>> {
        None
    }
}

impl Classifier for dfr_model::EfficientNet {
    fn logits(&self, images: &Tensor) -> Result<Tensor> {
        self.forward_t(images, false)
    }

    fn num_classes(&self) -> Option<usize> {
        Some(self.config().num_classes)
    }

    fn device(&self) -> Device {
        dfr_model::EfficientNet::device(self).clone()
    }

    fn freeze(&self) -> Option<dfr_model::FrozenParams<'_>> {
        Some(dfr_model::EfficientNet::freeze(self))
    }
}

impl<C: Classifier + ?Sized> Classifier for &C {
    fn logits(&self, images: &Tensor) -> Result<Tensor> {
        (**self).logits(images)
    }
    fn num_classes(&self) -> Option<usize> {
        (**self).num_classes()
    }
    fn device(&self) -> Device {
        (**self).device()
    }
    fn freeze(&self) -> Option<dfr_model::FrozenParams<'_>> {
        (**self).freeze()
    }
}

/// Wraps a closure `images → logits` (any candle model) as a [`Classifier`].
///
/// The closure must run the model in eval mode and detach weights it does not want
/// differentiated (e.g. `candle_nn` layers built from a `VarMap` compute weight
/// gradients too; that only costs time, the attacks stay correct).
pub struct FnClassifier<F> {
    f: F,
    num_classes: Option<usize>,
    device: Device,
}

impl<F: Fn(&Tensor) -> Result<Tensor>> FnClassifier<F> {
    /// A classifier calling `f` on CPU inputs; `num_classes` if known.
    pub fn new(f: F, num_classes: Option<usize>) -> Self {
        Self {
            f,
            num_classes,
            device: Device::Cpu,
        }
    }

    /// The same classifier taking inputs on `device`.
    pub fn on_device(mut self, device: Device) -> Self {
        self.device = device;
        self
    }
}

impl<F: Fn(&Tensor) -> Result<Tensor>> Classifier for FnClassifier<F> {
    fn logits(&self, images: &Tensor) -> Result<Tensor> {
        (self.f)(images)
    }
    fn num_classes(&self) -> Option<usize> {
        self.num_classes
    }
    fn device(&self) -> Device {
        self.device.clone()
    }
}
