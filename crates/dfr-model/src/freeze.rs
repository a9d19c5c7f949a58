//! Freezing every parameter for a scope: the one guard used by attacks and Grad-CAM,
//! whose backward passes need input (or feature) gradients only.

use crate::efficientnet::EfficientNet;

/// Keeps every parameter of a model frozen while it lives and restores each one's
/// previous trainable flag when dropped (see [`EfficientNet::freeze`]).
#[must_use = "parameters are unfrozen again as soon as the guard is dropped"]
#[derive(Debug)]
pub struct FrozenParams<'a> {
    model: &'a EfficientNet,
    saved: Vec<bool>,
}

impl EfficientNet {
    /// Freezes every parameter until the returned guard is dropped; frozen parameters
    /// enter the graph detached, so a backward pass computes no weight gradient.
    ///
    /// ```
    /// use candle_core::Device;
    /// use dfr_model::{Arch, EfficientNet, EfficientNetConfig};
    ///
    /// let model = EfficientNet::new(EfficientNetConfig::new(Arch::B0, 2), &Device::Cpu, 0)?;
    /// model.set_stages_trainable(1, false); // the PIM's shallow part
    /// {
    ///     let _frozen = model.freeze();
    ///     assert!(model.trainable_vars().is_empty());
    /// }
    /// // restored: the shallow part stays frozen, the rest is trainable again
    /// assert!(!model.param("features.0.0.weight").unwrap().is_trainable());
    /// assert!(model.param("classifier.1.weight").unwrap().is_trainable());
    /// # Ok::<(), dfr_model::Error>(())
    /// ```
    pub fn freeze(&self) -> FrozenParams<'_> {
        let saved = self
            .named_params()
            .iter()
            .map(|(_, p)| p.is_trainable())
            .collect();
        self.set_trainable(false);
        FrozenParams { model: self, saved }
    }
}

impl Drop for FrozenParams<'_> {
    fn drop(&mut self) {
        for ((_, p), &on) in self.model.named_params().iter().zip(&self.saved) {
            p.set_trainable(on);
        }
    }
}
