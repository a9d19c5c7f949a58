//! Building blocks: parameters with a trainable switch, running-statistics buffers,
//! convolutions, BatchNorm, linear layers and activations.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use candle_core::{DType, Device, Result, Tensor, Var, D};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

use crate::batch_norm::epilogue::EvalBn;
use crate::config::{Activation, PaddingMode};
use crate::depthwise::{depthwise_conv2d, depthwise_conv2d_eval, Padding2d};
pub use crate::pointwise::pointwise_conv;
use crate::pointwise::pointwise_conv_eval;

/// A learnable tensor: a candle [`Var`] plus a trainable flag.
///
/// While trainable, forward passes use the variable itself so that `backward()`
/// computes its gradient; when frozen they use a detached view of the same storage
/// (updates through [`Var::set`] are still seen), and no gradient is computed for it
/// (the depthwise op then even skips the weight-gradient kernel).
#[derive(Clone, Debug)]
pub struct Param {
    var: Var,
    trainable: Arc<AtomicBool>,
}

impl Param {
    /// Wraps a tensor into a new trainable variable.
    pub fn new(t: Tensor) -> Result<Self> {
        Ok(Self {
            var: Var::from_tensor(&t)?,
            trainable: Arc::new(AtomicBool::new(true)),
        })
    }

    /// The tensor to use in a forward pass (tracked iff trainable).
    pub fn tensor(&self) -> Tensor {
        if self.is_trainable() {
            self.var.as_tensor().clone()
        } else {
            self.var.as_tensor().detach()
        }
    }

    /// The underlying variable (for optimisers and gradient look-ups).
    pub fn var(&self) -> &Var {
        &self.var
    }

    /// Whether gradients are computed for this parameter.
    pub fn is_trainable(&self) -> bool {
        self.trainable.load(Ordering::Relaxed)
    }

    /// Freezes (`false`) or unfreezes (`true`) the parameter.
    pub fn set_trainable(&self, on: bool) {
        self.trainable.store(on, Ordering::Relaxed)
    }
}

/// A non-learnable state tensor (BatchNorm running statistics), updatable in place.
#[derive(Clone, Debug)]
pub struct Buffer(Arc<RwLock<Tensor>>);

impl Buffer {
    /// A new buffer holding `t` (detached).
    pub fn new(t: Tensor) -> Self {
        Self(Arc::new(RwLock::new(t.detach())))
    }

    /// The current value.
    pub fn get(&self) -> Tensor {
        self.0.read().expect("buffer lock poisoned").clone()
    }

    /// Replaces the value (detached).
    pub fn set(&self, t: Tensor) {
        *self.0.write().expect("buffer lock poisoned") = t.detach();
    }
}

/// Registry of named parameters and buffers, filled while a model is built.
#[derive(Clone, Debug, Default)]
pub struct Store {
    /// Parameters in creation order, torchvision-style names.
    pub params: Vec<(String, Param)>,
    /// Buffers in creation order, torchvision-style names.
    pub buffers: Vec<(String, Buffer)>,
}

/// Builder handing out named, randomly initialised tensors (torchvision init).
pub(crate) struct Init<'a> {
    pub store: &'a mut Store,
    pub rng: &'a mut ChaCha8Rng,
    pub device: &'a Device,
}

impl Init<'_> {
    fn tensor(&self, data: Vec<f32>, shape: &[usize]) -> Result<Tensor> {
        Tensor::from_vec(data, shape, self.device)
    }

    fn add_param(&mut self, name: String, t: Tensor) -> Result<Param> {
        let p = Param::new(t)?;
        self.store.params.push((name, p.clone()));
        Ok(p)
    }

    fn add_buffer(&mut self, name: String, t: Tensor) -> Buffer {
        let b = Buffer::new(t);
        self.store.buffers.push((name, b.clone()));
        b
    }

    /// Conv weight with kaiming-normal (fan_out) init.
    pub fn conv_weight(&mut self, name: String, shape: [usize; 4]) -> Result<Param> {
        let [o, _, kh, kw] = shape;
        let fan_out = (o * kh * kw) as f32;
        let std = (2.0 / fan_out).sqrt();
        let normal = Normal::new(0f32, std).expect("valid std");
        let n: usize = shape.iter().product();
        let data: Vec<f32> = (0..n).map(|_| normal.sample(self.rng)).collect();
        let t = self.tensor(data, &shape)?;
        self.add_param(name, t)
    }

    /// Constant-filled parameter.
    pub fn constant(&mut self, name: String, shape: &[usize], v: f32) -> Result<Param> {
        let n: usize = shape.iter().product();
        let t = self.tensor(vec![v; n], shape)?;
        self.add_param(name, t)
    }

    /// Constant-filled buffer.
    pub fn buffer(&mut self, name: String, shape: &[usize], v: f32) -> Result<Buffer> {
        let n: usize = shape.iter().product();
        let t = self.tensor(vec![v; n], shape)?;
        Ok(self.add_buffer(name, t))
    }

    /// Uniform(-bound, bound) parameter.
    pub fn uniform(&mut self, name: String, shape: &[usize], bound: f32) -> Result<Param> {
        let t = uniform_tensor(self.rng, shape, bound, self.device)?;
        self.add_param(name, t)
    }
}

/// Uniform(-bound, bound) tensor from a seeded generator.
pub(crate) fn uniform_tensor(
    rng: &mut ChaCha8Rng,
    shape: &[usize],
    bound: f32,
    device: &Device,
) -> Result<Tensor> {
    let n: usize = shape.iter().product();
    let data: Vec<f32> = (0..n).map(|_| rng.random_range(-bound..=bound)).collect();
    Tensor::from_vec(data, shape, device)
}

/// Applies an activation.
pub fn activate(x: &Tensor, act: Activation) -> Result<Tensor> {
    match act {
        Activation::Silu => x.silu(),
        Activation::Relu6 => x.relu()?.minimum(6f32),
    }
}

/// The fused ops' name for an activation.
pub(crate) fn fused_act(act: Activation) -> crate::batch_norm::FusedAct {
    match act {
        Activation::Silu => crate::batch_norm::FusedAct::Silu,
        Activation::Relu6 => crate::batch_norm::FusedAct::Relu6,
    }
}

/// A 2-D convolution without bias (depthwise, 1×1, or general).
#[derive(Clone, Debug)]
pub struct Conv2d {
    /// Weight `(O, I/groups, k, k)`.
    pub weight: Param,
    /// Kernel size.
    pub kernel: usize,
    /// Stride.
    pub stride: usize,
    /// Whether this is a depthwise convolution (groups = channels).
    pub depthwise: bool,
    /// Padding mode.
    pub padding: PaddingMode,
}

impl Conv2d {
    pub(crate) fn new(
        init: &mut Init<'_>,
        name: &str,
        (cin, cout): (usize, usize),
        kernel: usize,
        stride: usize,
        depthwise: bool,
        padding: PaddingMode,
    ) -> Result<Self> {
        let shape = if depthwise {
            [cout, 1, kernel, kernel]
        } else {
            [cout, cin, kernel, kernel]
        };
        let weight = init.conv_weight(format!("{name}.weight"), shape)?;
        Ok(Self {
            weight,
            kernel,
            stride,
            depthwise,
            padding,
        })
    }

    /// The padding used for an input of `h`×`w`.
    pub fn padding_for(&self, h: usize, w: usize) -> Padding2d {
        match self.padding {
            PaddingMode::Symmetric => Padding2d::symmetric(self.kernel / 2),
            PaddingMode::TfSame => Padding2d::tf_same(h, w, self.kernel, self.kernel, self.stride),
        }
    }

    /// The convolution followed by eval-mode BN (+ activation, + residual) in the kernel's own
    /// pass, for 1×1 and depthwise convolutions when nothing is tracked (inference; see
    /// [`crate::batch_norm::epilogue`]). `None` when that path does not apply.
    pub(crate) fn forward_eval(&self, x: &Tensor, bn: &EvalBn<'_>) -> Result<Option<Tensor>> {
        let wt = self.weight.tensor();
        if self.depthwise {
            let (_, _, h, w) = x.dims4()?;
            return depthwise_conv2d_eval(x, &wt, self.stride, self.padding_for(h, w), bn);
        }
        if self.kernel == 1 && self.stride == 1 {
            return pointwise_conv_eval(x, &wt, bn);
        }
        Ok(None)
    }

    /// Applies the convolution.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (_, _, h, w) = x.dims4()?;
        let pad = self.padding_for(h, w);
        let wt = self.weight.tensor();
        if self.depthwise {
            return depthwise_conv2d(x, &wt, self.stride, pad);
        }
        if self.kernel == 1 && self.stride == 1 {
            return pointwise_conv(x, &wt);
        }
        if pad.is_symmetric() {
            x.conv2d(&wt, pad.top, self.stride, 1, 1)
        } else {
            x.pad_with_zeros(2, pad.top, pad.bottom)?
                .pad_with_zeros(3, pad.left, pad.right)?
                .conv2d(&wt, 0, self.stride, 1, 1)
        }
    }
}

/// BatchNorm over the channels of an NCHW tensor, PyTorch semantics.
#[derive(Clone, Debug)]
pub struct BatchNorm2d {
    /// Scale (gamma).
    pub weight: Param,
    /// Shift (beta).
    pub bias: Param,
    /// Running mean.
    pub running_mean: Buffer,
    /// Running (unbiased) variance.
    pub running_var: Buffer,
    /// Epsilon.
    pub eps: f64,
    /// Momentum (`running = (1 - m) running + m batch`).
    pub momentum: f64,
}

impl BatchNorm2d {
    pub(crate) fn new(
        init: &mut Init<'_>,
        name: &str,
        c: usize,
        eps: f64,
        momentum: f64,
    ) -> Result<Self> {
        Ok(Self {
            weight: init.constant(format!("{name}.weight"), &[c], 1.0)?,
            bias: init.constant(format!("{name}.bias"), &[c], 0.0)?,
            running_mean: init.buffer(format!("{name}.running_mean"), &[c], 0.0)?,
            running_var: init.buffer(format!("{name}.running_var"), &[c], 1.0)?,
            eps,
            momentum,
        })
    }

    /// `running = (1 - m) running + m batch`, with the unbiased batch variance.
    fn update_running(&self, mean: &Tensor, biased_var: &Tensor, count: f64) -> Result<()> {
        let m = self.momentum;
        let unbiased = if count > 1.0 {
            count / (count - 1.0)
        } else {
            1.0
        };
        let bv = (biased_var.to_dtype(DType::F32)? * unbiased)?;
        let rm = self.running_mean.get();
        let rv = self.running_var.get();
        let new_rm = ((rm * (1.0 - m))? + (mean.to_dtype(DType::F32)? * m)?)?;
        let new_rv = ((rv * (1.0 - m))? + (bv * m)?)?;
        self.running_mean.set(new_rm);
        self.running_var.set(new_rv);
        Ok(())
    }

    /// Eval-mode BN as a per-channel affine map: `(scale, shift)` of shape (C).
    pub(crate) fn eval_affine(&self) -> Result<(Tensor, Tensor)> {
        let rm = self.running_mean.get();
        let rv = self.running_var.get();
        let scale = self
            .weight
            .tensor()
            .mul(&(rv + self.eps)?.sqrt()?.recip()?)?;
        let shift = self.bias.tensor().sub(&rm.mul(&scale)?)?;
        Ok((scale, shift))
    }

    /// Eval-mode BN followed by `act`. On f32 CPU tensors one fused op
    /// ([`crate::batch_norm::channel_affine_act`]): one pass forward, and a one-pass input
    /// gradient when the parameters are frozen (attacks, explanations). Otherwise (CUDA, other
    /// dtypes, [`crate::batch_norm::force_unfused`]) BN and then the activation.
    pub fn forward_eval_act(&self, x: &Tensor, act: Activation) -> Result<Tensor> {
        if crate::batch_norm::fused_cpu_ops(x) {
            let (scale, shift) = self.eval_affine()?;
            crate::batch_norm::channel_affine_act(x, &scale, &shift, fused_act(act))
        } else {
            activate(&self.forward_t(x, false)?, act)
        }
    }

    /// Train-mode BN followed by `act`. On f32 CPU tensors one fused op
    /// ([`crate::batch_norm::batch_norm_train_act`]) whose backward is two passes; otherwise
    /// (CUDA, other dtypes, [`crate::batch_norm::force_unfused`]) BN and then the activation.
    /// Updates the running statistics either way.
    pub fn forward_train_act(&self, x: &Tensor, act: Activation) -> Result<Tensor> {
        if !crate::batch_norm::fused_cpu_ops(x) {
            return activate(&self.forward_t(x, true)?, act);
        }
        let (n, _, h, w) = x.dims4()?;
        let (y, bm, bv) = crate::batch_norm::batch_norm_train_act(
            x,
            &self.weight.tensor(),
            &self.bias.tensor(),
            self.eps,
            fused_act(act),
        )?;
        self.update_running(&bm, &bv, (n * h * w) as f64)?;
        Ok(y)
    }

    /// Normalises `x`. In train mode uses the batch statistics (biased variance) and
    /// updates the running statistics (unbiased variance); in eval mode uses the
    /// running statistics.
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let (n, c, h, w) = x.dims4()?;
        let gamma = self.weight.tensor().reshape((1, c, 1, 1))?;
        let beta = self.bias.tensor().reshape((1, c, 1, 1))?;
        if train && crate::batch_norm::has_fused_ops(x) {
            let count = (n * h * w) as f64;
            let (y, bm, bv) = crate::batch_norm::batch_norm_train(
                x,
                &self.weight.tensor(),
                &self.bias.tensor(),
                self.eps,
            )?;
            self.update_running(&bm, &bv, count)?;
            Ok(y)
        } else if train {
            let count = (n * h * w) as f64;
            let mean = (x.sum_keepdim((0, 2, 3))? / count)?;
            let xc = x.broadcast_sub(&mean)?;
            let var = (xc.sqr()?.sum_keepdim((0, 2, 3))? / count)?;
            let inv = (var.clone() + self.eps)?.sqrt()?.recip()?;
            let y = xc
                .broadcast_mul(&inv.broadcast_mul(&gamma)?)?
                .broadcast_add(&beta)?;
            self.update_running(
                &mean.detach().flatten_all()?,
                &var.detach().flatten_all()?,
                count,
            )?;
            Ok(y)
        } else if crate::batch_norm::has_fused_ops(x) {
            let (scale, shift) = self.eval_affine()?;
            crate::batch_norm::channel_affine(x, &scale, &shift)
        } else {
            let rm = self.running_mean.get().reshape((1, c, 1, 1))?;
            let rv = self.running_var.get().reshape((1, c, 1, 1))?;
            let scale = gamma.broadcast_mul(&(rv + self.eps)?.sqrt()?.recip()?)?;
            let shift = beta.broadcast_sub(&rm.broadcast_mul(&scale)?)?;
            x.broadcast_mul(&scale)?.broadcast_add(&shift)
        }
    }
}

/// Fully connected layer `y = x W^T + b`.
#[derive(Clone, Debug)]
pub struct Linear {
    /// Weight `(out, in)`.
    pub weight: Param,
    /// Bias `(out)`.
    pub bias: Param,
}

impl Linear {
    /// Applies the layer to `(N, in)`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let w = self.weight.tensor();
        let w = if w.rank() == 4 { w.flatten_from(1)? } else { w };
        x.matmul(&w.t()?)?.broadcast_add(&self.bias.tensor())
    }
}

/// Squeeze-excitation: `x * sigmoid(fc2(silu(fc1(mean_hw(x)))))`.
#[derive(Clone, Debug)]
pub struct SqueezeExcite {
    /// Reduction (`fc1`, a 1×1 conv with bias).
    pub fc1: Linear,
    /// Expansion (`fc2`).
    pub fc2: Linear,
}

impl SqueezeExcite {
    /// Applies SE to an NCHW tensor: one fused op on f32 CPU tensors
    /// ([`crate::squeeze_excite::squeeze_excite`]), the composed candle ops otherwise (CUDA,
    /// other dtypes, [`crate::batch_norm::force_unfused`]).
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if crate::batch_norm::fused_cpu_ops(x) {
            return crate::squeeze_excite::squeeze_excite(
                x,
                &self.fc1.weight.tensor(),
                &self.fc1.bias.tensor(),
                &self.fc2.weight.tensor(),
                &self.fc2.bias.tensor(),
            );
        }
        let (n, c, _, _) = x.dims4()?;
        let s = x.mean_keepdim(D::Minus1)?.mean_keepdim(D::Minus2)?;
        let s = s.reshape((n, c))?;
        let s = self.fc1.forward(&s)?.silu()?;
        let s = candle_nn::ops::sigmoid(&self.fc2.forward(&s)?)?;
        x.broadcast_mul(&s.reshape((n, c, 1, 1))?)
    }
}
