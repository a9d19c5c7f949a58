//! Adam (Kingma & Ba) with PyTorch's update rule and checkpointable state.
//!
//! `m ← β1·m + (1−β1)·g`, `v ← β2·v + (1−β2)·g²`,
//! `θ ← θ − lr·(m/(1−β1ᵗ)) / (sqrt(v/(1−β2ᵗ)) + ε)`, with optional decoupled weight decay
//! `θ ← θ·(1 − lr·wd)` (AdamW). With `weight_decay = 0` it is exactly `torch.optim.Adam`.

use candle_core::backprop::GradStore;
use candle_core::{Result, Tensor, Var};

/// Hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamParams {
    /// Learning rate.
    pub lr: f64,
    /// β1.
    pub beta1: f64,
    /// β2.
    pub beta2: f64,
    /// ε.
    pub eps: f64,
    /// Decoupled weight decay.
    pub weight_decay: f64,
}

/// One optimised parameter with its moments.
#[derive(Debug)]
pub struct Slot {
    /// Parameter name (for checkpoints).
    pub name: String,
    /// The variable.
    pub var: Var,
    /// First moment.
    pub m: Tensor,
    /// Second moment.
    pub v: Tensor,
}

/// The optimiser.
#[derive(Debug)]
pub struct Adam {
    /// Hyper-parameters.
    pub params: AdamParams,
    /// Parameters and moments.
    pub slots: Vec<Slot>,
    /// Steps taken.
    pub t: u64,
}

impl Adam {
    /// A fresh optimiser over named variables (zero moments).
    pub fn new(vars: Vec<(String, Var)>, params: AdamParams) -> Result<Self> {
        let slots = vars
            .into_iter()
            .map(|(name, var)| {
                let m = var.as_tensor().zeros_like()?;
                let v = var.as_tensor().zeros_like()?;
                Ok(Slot { name, var, m, v })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Adam {
            params,
            slots,
            t: 0,
        })
    }

    /// A fresh optimiser over every trainable parameter of `model` (frozen ones are left out,
    /// as a PyTorch optimiser built from `requires_grad` parameters would).
    pub fn for_trainable(model: &dfr_model::EfficientNet, params: AdamParams) -> Result<Self> {
        let vars = model
            .named_params()
            .iter()
            .filter(|(_, p)| p.is_trainable())
            .map(|(n, p)| (n.clone(), p.var().clone()))
            .collect();
        Self::new(vars, params)
    }

    /// One update from the gradients in `grads` (a parameter without gradient is left as is,
    /// its moments unchanged — as PyTorch does for `grad is None`).
    pub fn step(&mut self, grads: &GradStore) -> Result<()> {
        self.t += 1;
        let p = self.params;
        let bc1 = 1.0 - p.beta1.powi(self.t as i32);
        let bc2 = 1.0 - p.beta2.powi(self.t as i32);
        for s in &mut self.slots {
            let Some(g) = grads.get(s.var.as_tensor()) else {
                continue;
            };
            let m = ((&s.m * p.beta1)? + (g * (1.0 - p.beta1))?)?;
            let v = ((&s.v * p.beta2)? + (g.sqr()? * (1.0 - p.beta2))?)?;
            let m_hat = (&m / bc1)?;
            let v_hat = (&v / bc2)?;
            let update = (m_hat / (v_hat.sqrt()? + p.eps)?)?;
            let mut theta = s.var.as_tensor().detach();
            if p.weight_decay > 0.0 {
                theta = (theta * (1.0 - p.lr * p.weight_decay))?;
            }
            s.var.set(&(theta - (update * p.lr)?)?)?;
            s.m = m;
            s.v = v;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;
    use candle_nn::Optimizer;

    #[test]
    fn matches_candle_adamw_without_decay() -> Result<()> {
        let dev = Device::Cpu;
        let init = Tensor::new(&[[0.5f32, -1.0], [2.0, 0.25]], &dev)?;
        let a = Var::from_tensor(&init)?;
        let b = Var::from_tensor(&init)?;
        let params = AdamParams {
            lr: 1e-2,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
        };
        let mut ours = Adam::new(vec![("w".into(), a.clone())], params)?;
        let mut theirs = candle_nn::AdamW::new(
            vec![b.clone()],
            candle_nn::ParamsAdamW {
                lr: 1e-2,
                weight_decay: 0.0,
                ..Default::default()
            },
        )?;
        for k in 0..5 {
            let la = (a.as_tensor().sqr()? * (k as f64 + 1.0))?.sum_all()?;
            ours.step(&la.backward()?)?;
            let lb = (b.as_tensor().sqr()? * (k as f64 + 1.0))?.sum_all()?;
            theirs.backward_step(&lb)?;
        }
        let d = (a.as_tensor() - b.as_tensor())?
            .abs()?
            .max_all()?
            .to_scalar::<f32>()?;
        assert!(d < 1e-6, "difference {d}");
        assert_ne!(a.as_tensor().to_vec2::<f32>()?, init.to_vec2::<f32>()?);
        Ok(())
    }
}
