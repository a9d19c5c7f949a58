//! A differentiable image classifier, the only thing the attacks need.

use candle_core::{Device, Result, Tensor};

/// A differentiable classifier: images `(N, C, H, W)` with values in [0, 1] →
/// logits `(N, K)`, in **eval mode** (no batch statistics, no dropout) so that samples
/// of a batch do not influence each other. Any normalisation happens inside.
///
/// Attacks only need input gradients. candle computes the gradient of every tracked
/// tensor of the graph, weights included; an implementation should therefore keep
/// its weights out of the graph while [`Classifier::set_params_frozen`] is on (see the
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

    /// Per-parameter "frozen" state, to be restored with
    /// [`Classifier::restore_params_state`] (empty when the model has no such switch).
    fn params_state(&self) -> Vec<bool> {
        Vec::new()
    }

    /// Freezes (`true`) or unfreezes all parameters. The default does nothing.
    fn set_params_frozen(&self, _frozen: bool) {}

    /// Restores a state returned by [`Classifier::params_state`].
    fn restore_params_state(&self, _state: &[bool]) {}
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

    fn params_state(&self) -> Vec<bool> {
        self.named_params()
            .iter()
            .map(|(_, p)| !p.is_trainable())
            .collect()
    }

    fn set_params_frozen(&self, frozen: bool) {
        self.set_trainable(!frozen)
    }

    fn restore_params_state(&self, state: &[bool]) {
        for ((_, p), &frozen) in self.named_params().iter().zip(state) {
            p.set_trainable(!frozen)
        }
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
    fn params_state(&self) -> Vec<bool> {
        (**self).params_state()
    }
    fn set_params_frozen(&self, frozen: bool) {
        (**self).set_params_frozen(frozen)
    }
    fn restore_params_state(&self, state: &[bool]) {
        (**self).restore_params_state(state)
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

/// Freezes a classifier's parameters for its lifetime and restores their previous
/// state when dropped.
pub struct FrozenGuard<'a, C: Classifier + ?Sized> {
    model: &'a C,
    state: Vec<bool>,
}

impl<'a, C: Classifier + ?Sized> FrozenGuard<'a, C> {
    /// Freezes every parameter of `model`.
    pub fn new(model: &'a C) -> Self {
        let state = model.params_state();
        model.set_params_frozen(true);
        Self { model, state }
    }
}

impl<C: Classifier + ?Sized> Drop for FrozenGuard<'_, C> {
    fn drop(&mut self) {
        if self.state.is_empty() {
            self.model.set_params_frozen(false);
        } else {
            self.model.restore_params_state(&self.state);
        }
    }
}
