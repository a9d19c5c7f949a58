//! The EfficientNet model: stem, MBConv stages, head, classifier.
//!
//! Feature stages follow torchvision's `features` indices: stage 0 is the stem conv,
//! stages 1..=7 the MBConv stages, stage 8 the head conv (1×1 conv + BN + activation).
//! Parameters and buffers carry torchvision names (`features.1.0.block.1.fc1.weight`,
//! `classifier.1.weight`, …); Lite models use the same scheme without the SE entry.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use candle_core::{DType, Device, Result, Tensor, Var};
use candle_nn::ModuleT;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::batch_norm::epilogue::EvalBn;
use crate::config::{Activation, BlockSpec, EfficientNetConfig};
use crate::conv_bn::ConvStage;
use crate::layers::{
    fused_act, BatchNorm2d, Buffer, Conv2d, Init, Linear, Param, SqueezeExcite, Store,
};
use crate::mbconv_eval::MbConvPlan;
use crate::squeeze_excite::FrozenSe;

/// Conv + BatchNorm + optional activation (torchvision `Conv2dNormActivation`).
#[derive(Clone, Debug)]
pub struct ConvBnAct {
    /// The convolution.
    pub conv: Conv2d,
    /// The BatchNorm.
    pub bn: BatchNorm2d,
    /// Activation (None for the projection conv).
    pub act: Option<Activation>,
}

impl ConvBnAct {
    /// Applies conv, BN and activation.
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        if !train {
            if let Some(y) = self.forward_eval_fused(x, None)? {
                return Ok(y);
            }
            if let Some(y) = self.forward_eval_one_op(x)? {
                return Ok(y);
            }
        }
        let h = self.conv.forward(x)?;
        match self.act {
            Some(a) if !train => self.bn.forward_eval_act(&h, a),
            Some(a) => self.bn.forward_train_act(&h, a),
            None => self.bn.forward_t(&h, train),
        }
    }
}

impl ConvBnAct {
    /// Eval mode with nothing tracked (inference: every parameter frozen, an untracked input):
    /// BN, the activation and `residual` applied inside the convolution's pass (see
    /// [`crate::batch_norm::epilogue`]), bit-identical to the op-by-op path. `None` where it
    /// does not apply (tracked operands, CUDA, [`crate::batch_norm::force_unfused`], the stem's
    /// full convolution).
    fn forward_eval_fused(&self, x: &Tensor, residual: Option<&Tensor>) -> Result<Option<Tensor>> {
        if !self.frozen() || x.track_op() || !crate::batch_norm::fused_cpu_ops(x) {
            return Ok(None);
        }
        let (scale, shift) = self.bn.eval_affine()?;
        let bn = EvalBn {
            scale: &scale,
            shift: &shift,
            act: self.act.map(fused_act),
            residual,
        };
        self.conv.forward_eval(x, &bn)
    }
}

impl ConvBnAct {
    /// Whether the convolution's and the BN's parameters are all frozen.
    fn frozen(&self) -> bool {
        !self.conv.weight.is_trainable()
            && !self.bn.weight.is_trainable()
            && !self.bn.bias.is_trainable()
    }

    /// Eval mode with frozen parameters and an input that may be tracked (attacks,
    /// explanations): the convolution, BN and activation as one op whose backward gives the
    /// input gradient without an intermediate gradient tensor (see [`crate::conv_bn`]),
    /// value for value the op-by-op path's. `None` where it does not apply (the stem's full
    /// convolution, CUDA, [`crate::batch_norm::force_unfused`]).
    fn forward_eval_one_op(&self, x: &Tensor) -> Result<Option<Tensor>> {
        match self.eval_stage(x)? {
            Some(stage) => crate::conv_bn::conv_bn_eval(x, stage).map(Some),
            None => Ok(None),
        }
    }

    /// The layer as a [`ConvStage`] for the input `x` (frozen parameters, f32 on the CPU,
    /// fused ops on, a 1×1 or depthwise convolution); `None` otherwise.
    fn eval_stage(&self, x: &Tensor) -> Result<Option<ConvStage>> {
        if !self.frozen() || !crate::batch_norm::fused_cpu_ops(x) {
            return Ok(None);
        }
        self.eval_stage_for(x.dims4()?)
    }

    /// [`ConvBnAct::eval_stage`] for an input of `dims` (frozen parameters assumed checked).
    fn eval_stage_for(&self, dims: (usize, usize, usize, usize)) -> Result<Option<ConvStage>> {
        let (scale, shift) = self.bn.eval_affine()?;
        ConvStage::new(dims, &self.conv, (&scale, &shift), self.act.map(fused_act))
    }
}

/// One MBConv block (inverted residual with optional SE).
#[derive(Clone, Debug)]
pub struct MbConv {
    /// Its specification.
    pub spec: BlockSpec,
    /// 1×1 expansion (absent for expand ratio 1).
    pub expand: Option<ConvBnAct>,
    /// Depthwise conv.
    pub depthwise: ConvBnAct,
    /// Squeeze-excitation (absent in Lite).
    pub se: Option<SqueezeExcite>,
    /// 1×1 projection (no activation).
    pub project: ConvBnAct,
}

/// Randomness of train-mode forwards (dropout, stochastic depth).
#[derive(Debug)]
struct Stochastic {
    enabled: AtomicBool,
    rng: Mutex<ChaCha8Rng>,
}

impl Stochastic {
    /// Per-sample keep mask scaled by 1/keep, shape `shape`.
    fn mask(&self, shape: &[usize], p: f64, device: &Device) -> Result<Tensor> {
        let keep = 1.0 - p;
        let n: usize = shape.iter().product();
        let mut rng = self.rng.lock().expect("rng lock poisoned");
        let data: Vec<f32> = (0..n)
            .map(|_| {
                if rng.random::<f64>() < keep {
                    (1.0 / keep) as f32
                } else {
                    0.0
                }
            })
            .collect();
        Tensor::from_vec(data, shape, device)
    }
}

impl MbConv {
    fn forward_t(&self, x: &Tensor, train: bool, st: &Stochastic) -> Result<Tensor> {
        if !train && x.track_op() {
            if let Some(y) = self.forward_eval_one_op(x)? {
                return Ok(y);
            }
        }
        let mut h = match &self.expand {
            Some(e) => e.forward_t(x, train)?,
            None => x.clone(),
        };
        h = self.depthwise.forward_t(&h, train)?;
        if let Some(se) = &self.se {
            h = se.forward(&h)?;
        }
        if !train && self.spec.residual() {
            // inference: BN and the residual in the projection's own pass
            if let Some(y) = self.project.forward_eval_fused(&h, Some(x))? {
                return Ok(y);
            }
        }
        h = self.project.forward_t(&h, train)?;
        if self.spec.residual() {
            let p = self.spec.sd_prob;
            if train && p > 0.0 && st.enabled.load(Ordering::Relaxed) {
                let n = h.dim(0)?;
                let m = st.mask(&[n, 1, 1, 1], p, h.device())?.to_dtype(h.dtype())?;
                h = h.broadcast_mul(&m)?;
            }
            h = (h + x)?;
        }
        Ok(h)
    }
}

impl MbConv {
    /// Eval mode with frozen parameters and a tracked input (attacks, explanations): the
    /// whole block as one op whose backward hands each stage's input gradient straight to
    /// the stage before it (see [`crate::mbconv_eval`]), value for value the op-by-op path's.
    /// `None` where it does not apply (a trainable parameter, CUDA,
    /// [`crate::batch_norm::force_unfused`], a reference kernel forced).
    fn forward_eval_one_op(&self, x: &Tensor) -> Result<Option<Tensor>> {
        let parts = [
            self.expand.as_ref(),
            Some(&self.depthwise),
            Some(&self.project),
        ];
        let se_frozen = self.se.as_ref().is_none_or(|se| {
            [&se.fc1.weight, &se.fc1.bias, &se.fc2.weight, &se.fc2.bias]
                .iter()
                .all(|p| !p.is_trainable())
        });
        let all_frozen = parts.iter().flatten().all(|p| p.frozen()) && se_frozen;
        if !all_frozen || !crate::batch_norm::fused_cpu_ops(x) {
            return Ok(None);
        }
        let input = x.dims4()?;
        let expand = match &self.expand {
            Some(e) => match e.eval_stage_for(input)? {
                Some(stage) => Some(stage),
                None => return Ok(None),
            },
            None => None,
        };
        let expanded = expand.as_ref().map_or(input, ConvStage::out_dims);
        let Some(depthwise) = self.depthwise.eval_stage_for(expanded)? else {
            return Ok(None);
        };
        let mid = depthwise.out_dims();
        let se = match &self.se {
            Some(se) => {
                let (w1, b1) = (se.fc1.weight.tensor(), se.fc1.bias.tensor());
                let (w2, b2) = (se.fc2.weight.tensor(), se.fc2.bias.tensor());
                match FrozenSe::new(mid, (&w1, &b1), (&w2, &b2))? {
                    Some(se) => Some(se),
                    None => return Ok(None),
                }
            }
            None => None,
        };
        let Some(project) = self.project.eval_stage_for(mid)? else {
            return Ok(None);
        };
        let plan = MbConvPlan {
            expand,
            depthwise,
            se,
            project,
            residual: self.spec.residual(),
        };
        crate::mbconv_eval::mbconv_eval(x, plan).map(Some)
    }
}

/// EfficientNet B0–B7 / Lite0–4 classifier taking images in [0, 1].
#[derive(Debug)]
pub struct EfficientNet {
    config: EfficientNetConfig,
    device: Device,
    mean: Tensor,
    std: Tensor,
    stem: ConvBnAct,
    stages: Vec<Vec<MbConv>>,
    head: ConvBnAct,
    classifier: Linear,
    store: Store,
    stochastic: Stochastic,
}

impl EfficientNet {
    /// Builds a randomly initialised model (torchvision init: kaiming-normal fan-out
    /// convs, BN 1/0, classifier uniform ±1/sqrt(fan_in), zero biases). `seed` drives
    /// the initialisation and the dropout / stochastic-depth masks.
    pub fn new(config: EfficientNetConfig, device: &Device, seed: u64) -> Result<Self> {
        let mut store = Store::default();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut init = Init {
            store: &mut store,
            rng: &mut rng,
            device,
        };
        let act = config.activation();
        let pad = config.padding_mode();
        let (eps, mom) = (config.bn_eps, config.bn_momentum);
        let cba = |init: &mut Init<'_>,
                   name: &str,
                   ch: (usize, usize),
                   k: usize,
                   s: usize,
                   dw: bool,
                   act: Option<Activation>|
         -> Result<ConvBnAct> {
            Ok(ConvBnAct {
                conv: Conv2d::new(init, &format!("{name}.0"), ch, k, s, dw, pad)?,
                bn: BatchNorm2d::new(init, &format!("{name}.1"), ch.1, eps, mom)?,
                act,
            })
        };
        let stem_ch = config.stem_channels();
        let stem = cba(
            &mut init,
            "features.0",
            (3, stem_ch),
            3,
            2,
            false,
            Some(act),
        )?;
        let mut stages = Vec::new();
        for specs in config.stages() {
            let mut blocks = Vec::new();
            for spec in specs {
                let names = spec.module_names();
                let hid = spec.hidden_ch();
                let expand = match &names.expand {
                    Some(name) => Some(cba(
                        &mut init,
                        name,
                        (spec.in_ch, hid),
                        1,
                        1,
                        false,
                        Some(act),
                    )?),
                    None => None,
                };
                let depthwise = cba(
                    &mut init,
                    &names.depthwise,
                    (hid, hid),
                    spec.kernel,
                    spec.stride,
                    true,
                    Some(act),
                )?;
                let se = match (spec.se_ch, &names.se) {
                    (Some(sq), Some(p)) => {
                        let fc = |init: &mut Init<'_>, n: &str, i: usize, o: usize| {
                            Ok::<_, candle_core::Error>(Linear {
                                weight: init
                                    .conv_weight(format!("{p}.{n}.weight"), [o, i, 1, 1])?,
                                bias: init.constant(format!("{p}.{n}.bias"), &[o], 0.0)?,
                            })
                        };
                        let fc1 = fc(&mut init, "fc1", hid, sq)?;
                        let fc2 = fc(&mut init, "fc2", sq, hid)?;
                        Some(SqueezeExcite { fc1, fc2 })
                    }
                    _ => None,
                };
                let project = cba(
                    &mut init,
                    &names.project,
                    (hid, spec.out_ch),
                    1,
                    1,
                    false,
                    None,
                )?;
                blocks.push(MbConv {
                    spec,
                    expand,
                    depthwise,
                    se,
                    project,
                });
            }
            stages.push(blocks);
        }
        let last_in = stages
            .last()
            .and_then(|s| s.last())
            .map(|b| b.spec.out_ch)
            .unwrap_or(stem_ch);
        let head_ch = config.head_channels();
        let head = cba(
            &mut init,
            "features.8",
            (last_in, head_ch),
            1,
            1,
            false,
            Some(act),
        )?;
        let bound = 1.0 / (head_ch as f32).sqrt();
        let classifier = Linear {
            weight: init.uniform(
                "classifier.1.weight".into(),
                &[config.num_classes, head_ch],
                bound,
            )?,
            bias: init.constant("classifier.1.bias".into(), &[config.num_classes], 0.0)?,
        };
        let mean = Tensor::from_slice(&config.mean, (1, 3, 1, 1), device)?;
        let std = Tensor::from_slice(&config.std, (1, 3, 1, 1), device)?;
        Ok(Self {
            config,
            device: device.clone(),
            mean,
            std,
            stem,
            stages,
            head,
            classifier,
            store,
            stochastic: Stochastic {
                enabled: AtomicBool::new(true),
                rng: Mutex::new(rng),
            },
        })
    }

    /// The configuration.
    pub fn config(&self) -> &EfficientNetConfig {
        &self.config
    }

    /// The device the parameters live on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Number of feature stages (9: stem, 7 MBConv stages, head conv).
    pub fn num_stages(&self) -> usize {
        9
    }

    /// Re-seeds the generator of dropout and stochastic-depth masks.
    pub fn set_seed(&self, seed: u64) {
        *self.stochastic.rng.lock().expect("rng lock poisoned") = ChaCha8Rng::seed_from_u64(seed);
    }

    /// Switches dropout and stochastic depth on or off (train mode only; they are
    /// always off in eval mode).
    pub fn set_stochastic(&self, enabled: bool) {
        self.stochastic.enabled.store(enabled, Ordering::Relaxed)
    }

    /// Whether dropout and stochastic depth are on in train mode.
    pub fn stochastic_enabled(&self) -> bool {
        self.stochastic.enabled.load(Ordering::Relaxed)
    }

    /// Named parameters (torchvision naming) in definition order.
    pub fn named_params(&self) -> &[(String, Param)] {
        &self.store.params
    }

    /// Named buffers (BN running statistics) in definition order.
    pub fn named_buffers(&self) -> &[(String, Buffer)] {
        &self.store.buffers
    }

    /// The parameter with this (torchvision-style) name.
    pub fn param(&self, name: &str) -> Option<&Param> {
        self.store
            .params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, p)| p)
    }

    /// The buffer with this name.
    pub fn buffer(&self, name: &str) -> Option<&Buffer> {
        self.store
            .buffers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, b)| b)
    }

    /// Variables of the trainable parameters (for an optimiser).
    pub fn trainable_vars(&self) -> Vec<Var> {
        self.store
            .params
            .iter()
            .filter(|(_, p)| p.is_trainable())
            .map(|(_, p)| p.var().clone())
            .collect()
    }

    /// Variables of all parameters.
    pub fn all_vars(&self) -> Vec<Var> {
        self.store
            .params
            .iter()
            .map(|(_, p)| p.var().clone())
            .collect()
    }

    /// Freezes (`false`) or unfreezes (`true`) every parameter.
    pub fn set_trainable(&self, on: bool) {
        for (_, p) in &self.store.params {
            p.set_trainable(on)
        }
    }

    /// Freezes or unfreezes the parameters whose name satisfies `pred`.
    pub fn set_trainable_where(&self, on: bool, pred: impl Fn(&str) -> bool) {
        for (n, p) in &self.store.params {
            if pred(n) {
                p.set_trainable(on)
            }
        }
    }

    /// Freezes or unfreezes feature stages `0..=k` (e.g. the PIM shallow part, k = 1).
    pub fn set_stages_trainable(&self, up_to: usize, on: bool) {
        self.set_trainable_where(on, |n| {
            n.strip_prefix("features.")
                .and_then(|r| r.split('.').next())
                .and_then(|s| s.parse::<usize>().ok())
                .is_some_and(|s| s <= up_to)
        })
    }

    /// All parameters and buffers as (name, tensor), the state to save.
    pub fn state_tensors(&self) -> Vec<(String, Tensor)> {
        let mut v: Vec<(String, Tensor)> = self
            .store
            .params
            .iter()
            .map(|(n, p)| (n.clone(), p.var().as_tensor().detach()))
            .collect();
        v.extend(self.store.buffers.iter().map(|(n, b)| (n.clone(), b.get())));
        v
    }

    /// `(x - mean) / std` for images in [0, 1].
    pub fn normalize(&self, x: &Tensor) -> Result<Tensor> {
        let mean = self.mean.to_dtype(x.dtype())?;
        let std = self.std.to_dtype(x.dtype())?;
        x.broadcast_sub(&mean)?.broadcast_div(&std)
    }

    fn stage_t(&self, k: usize, x: &Tensor, train: bool) -> Result<Tensor> {
        match k {
            0 => self.stem.forward_t(x, train),
            1..=7 => {
                let mut h = x.clone();
                for b in &self.stages[k - 1] {
                    h = b.forward_t(&h, train, &self.stochastic)?;
                }
                Ok(h)
            }
            8 => self.head.forward_t(x, train),
            _ => candle_core::bail!("stage {k} out of range 0..=8"),
        }
    }

    /// Normalises images in [0, 1] and returns the features after stage `k`
    /// (torchvision `features[:k+1]`; 0 = stem, 1 = first MBConv stage, 8 = head conv).
    pub fn forward_to_stage(&self, x: &Tensor, k: usize, train: bool) -> Result<Tensor> {
        if k > 8 {
            candle_core::bail!("stage {k} out of range 0..=8")
        }
        let mut h = self.normalize(x)?;
        for s in 0..=k {
            h = self.stage_t(s, &h, train)?;
        }
        Ok(h)
    }

    /// Runs stages `k+1..=8`, pooling, dropout and the classifier on features of
    /// stage `k`, returning logits.
    pub fn forward_from_stage(&self, feat: &Tensor, k: usize, train: bool) -> Result<Tensor> {
        if k > 8 {
            candle_core::bail!("stage {k} out of range 0..=8")
        }
        let mut h = feat.clone();
        for s in k + 1..=8 {
            h = self.stage_t(s, &h, train)?;
        }
        self.classify(&h, train)
    }

    /// Global average pooling, dropout (train mode) and the classifier on head
    /// features `(N, C, H, W)`.
    pub fn classify(&self, feat: &Tensor, train: bool) -> Result<Tensor> {
        let mut pooled = feat.flatten_from(2)?.mean(2)?;
        let p = self.config.dropout;
        if train && p > 0.0 && self.stochastic_enabled() {
            let m = self
                .stochastic
                .mask(pooled.dims(), p, pooled.device())?
                .to_dtype(pooled.dtype())?;
            pooled = (pooled * m)?;
        }
        self.classifier.forward(&pooled)
    }

    /// Logits and the activation after stage `k` (Grad-CAM: k = 8, the head conv
    /// output after its activation).
    pub fn forward_with_features(
        &self,
        x: &Tensor,
        k: usize,
        train: bool,
    ) -> Result<(Tensor, Tensor)> {
        let feat = self.forward_to_stage(x, k, train)?;
        let logits = self.forward_from_stage(&feat, k, train)?;
        Ok((logits, feat))
    }

    /// Logits for images in [0, 1]; `train` selects batch statistics (and updates the
    /// running statistics), dropout and stochastic depth.
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let feat = self.forward_to_stage(x, 8, train)?;
        self.classify(&feat, train)
    }

    /// Eval-mode logits.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_t(x, false)
    }

    /// Re-initialises the classifier (uniform ±1/sqrt(fan_in), zero bias).
    pub fn reset_classifier(&self, seed: u64) -> Result<()> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let (o, i) = self.classifier.weight.var().dims2()?;
        let bound = 1.0 / (i as f32).sqrt();
        let w = crate::layers::uniform_tensor(&mut rng, &[o, i], bound, &self.device)?;
        self.classifier.weight.var().set(&w)?;
        self.classifier
            .bias
            .var()
            .set(&Tensor::zeros(o, DType::F32, &self.device)?)?;
        Ok(())
    }
}

impl ModuleT for EfficientNet {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        EfficientNet::forward_t(self, xs, train)
    }
}

/// Class probabilities (softmax over the logits) of images in [0, 1], eval mode, with every
/// parameter frozen for the call (no graph is recorded).
pub fn predict_probs(model: &EfficientNet, images: &Tensor) -> Result<Tensor> {
    let _frozen = model.freeze();
    let logits = model.forward_t(&images.detach(), false)?;
    candle_nn::ops::softmax_last_dim(&logits)
}
