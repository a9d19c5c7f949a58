//! Shared test helpers (included with `mod common;`).
#![allow(dead_code)]

pub mod attack_case;

use std::path::PathBuf;

use candle_core::{Device, Tensor};
use dfr_model::{Arch, EfficientNet, EfficientNetConfig};

/// The fixture directory when it holds `attack_case.safetensors`; `None` (skip) or a
/// failure under `CI` when missing.
pub fn fixtures() -> Option<PathBuf> {
    dfr_parity::fixtures_for_test("attack_case.safetensors")
}

/// A small random-init B0 (2 classes, stochastic layers off).
pub fn small_b0(seed: u64) -> EfficientNet {
    EfficientNet::new(
        EfficientNetConfig::new(Arch::B0, 2).without_stochastic(),
        &Device::Cpu,
        seed,
    )
    .expect("model")
}

/// A random-init B0 whose BatchNorm running statistics are calibrated on random
/// images (one train-mode forward of 64 images with momentum 1), so that eval-mode
/// logits are neither vanishing (uncalibrated: ~1e-15) nor exploding.
pub fn calibrated_b0(seed: u64, size: usize) -> EfficientNet {
    calibrated_b0_on(seed, &images(64, size, seed + 1000))
}

/// A random-init B0 with BatchNorm statistics calibrated on `calibration`.
pub fn calibrated_b0_on(seed: u64, calibration: &Tensor) -> EfficientNet {
    let mut cfg = EfficientNetConfig::new(Arch::B0, 2).without_stochastic();
    cfg.bn_momentum = 1.0;
    let m = EfficientNet::new(cfg, &Device::Cpu, seed).expect("model");
    m.forward_t(calibration, true).expect("calibration");
    m
}

/// Deterministic images in [0, 1] of shape (n, 3, s, s), some pixels at 0 and 1.
pub fn images(n: usize, s: usize, seed: u64) -> Tensor {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let data: Vec<f32> = (0..n * 3 * s * s)
        .map(|i| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let v = ((state >> 33) as f32) / (1u64 << 31) as f32;
            // a few saturated pixels so that clamping matters
            match i % 97 {
                0 => 0.0,
                1 => 1.0,
                _ => v,
            }
        })
        .collect();
    Tensor::from_vec(data, (n, 3, s, s), &Device::Cpu).expect("images")
}

/// A linear classifier on flattened pixels (fast), as a [`dfr_attacks::FnClassifier`].
pub fn linear_model(
    dim: usize,
    classes: usize,
    seed: u64,
) -> dfr_attacks::FnClassifier<impl Fn(&Tensor) -> candle_core::Result<Tensor>> {
    let raw: Vec<f32> = {
        let mut state = seed ^ 0x9E37_79B9_7F4A_7C15;
        (0..dim * classes)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (((state >> 33) as f32) / (1u64 << 31) as f32 - 0.5) * 0.2
            })
            .collect()
    };
    let w = Tensor::from_vec(raw, (dim, classes), &Device::Cpu).unwrap();
    dfr_attacks::FnClassifier::new(
        move |x: &Tensor| {
            let n = x.dim(0)?;
            // a smooth non-linearity so that gradients vary with x
            x.reshape((n, ()))?.tanh()?.matmul(&w)
        },
        Some(classes),
    )
}
