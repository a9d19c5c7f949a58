//! Quick timings: the depthwise op against candle's grouped conv2d, on one layer and
//! inside EfficientNet-B0 (batch 4, 224×224).
//!
//! `cargo run -p dfr-model --release --example bench [-- BATCH SIZE]`

use std::time::Instant;

use candle_core::{Device, Tensor, Var};
use dfr_model::depthwise::{
    depthwise_conv2d, depthwise_conv2d_reference, force_reference_impl, Padding2d,
};
use dfr_model::loss::weighted_cross_entropy;
use dfr_model::{Arch, EfficientNet, EfficientNetConfig};

fn time<F: FnMut() -> candle_core::Result<()>>(reps: usize, mut f: F) -> f64 {
    f().unwrap(); // warm-up
    let t = Instant::now();
    for _ in 0..reps {
        f().unwrap();
    }
    t.elapsed().as_secs_f64() * 1e3 / reps as f64
}

fn main() -> candle_core::Result<()> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let batch = args.first().copied().unwrap_or(4);
    let size = args.get(1).copied().unwrap_or(224);
    let dev = Device::Cpu;
    println!("threads: {}", rayon::current_num_threads());

    // one layer: features.2.0 depthwise (96 ch, 112x112 -> 56x56, k3 s2) and a k5 s1 layer
    for (c, hw, k, s) in [
        (96, size / 2, 3, 2),
        (144, size / 4, 5, 1),
        (32, size / 2, 3, 1),
    ] {
        let x = Var::from_tensor(&Tensor::randn(0f32, 1., (batch, c, hw, hw), &dev)?)?;
        let w = Var::from_tensor(&Tensor::randn(0f32, 1., (c, 1, k, k), &dev)?)?;
        let pad = Padding2d::symmetric(k / 2);
        let r = Tensor::randn(
            0f32,
            1.,
            depthwise_conv2d(x.as_tensor(), w.as_tensor(), s, pad)?.dims(),
            &dev,
        )?;
        let ours_f = time(10, || {
            depthwise_conv2d(x.as_tensor(), w.as_tensor(), s, pad).map(|_| ())
        });
        let ref_f = time(3, || {
            depthwise_conv2d_reference(x.as_tensor(), w.as_tensor(), s, pad).map(|_| ())
        });
        let ours_b = time(10, || {
            (depthwise_conv2d(x.as_tensor(), w.as_tensor(), s, pad)? * &r)?
                .sum_all()?
                .backward()
                .map(|_| ())
        });
        let ref_b = time(3, || {
            (depthwise_conv2d_reference(x.as_tensor(), w.as_tensor(), s, pad)? * &r)?
                .sum_all()?
                .backward()
                .map(|_| ())
        });
        println!(
            "depthwise N{batch} C{c} {hw}x{hw} k{k} s{s}: forward {ours_f:.2} ms vs candle {ref_f:.2} ms ({:.1}x); fwd+bwd {ours_b:.2} ms vs {ref_b:.2} ms ({:.1}x)",
            ref_f / ours_f,
            ref_b / ours_b
        );
    }

    let model = EfficientNet::new(
        EfficientNetConfig::new(Arch::B0, 2).without_stochastic(),
        &dev,
        0,
    )?;
    let x = Tensor::rand(0f32, 1., (batch, 3, size, size), &dev)?;
    let y = Tensor::zeros(batch, candle_core::DType::I64, &dev)?;
    for reference in [false, true] {
        force_reference_impl(reference);
        let reps = if reference { 1 } else { 3 };
        let eval_f = time(reps, || model.forward_t(&x, false).map(|_| ()));
        // attack-style: input gradient only, parameters frozen
        let frozen = model.freeze();
        let xv = Var::from_tensor(&x)?;
        let attack = time(reps, || {
            weighted_cross_entropy(&model.forward_t(xv.as_tensor(), false)?, &y, None)?
                .backward()
                .map(|_| ())
        });
        drop(frozen);
        let train = time(reps, || {
            weighted_cross_entropy(&model.forward_t(&x, true)?, &y, None)?
                .backward()
                .map(|_| ())
        });
        println!(
            "B0 N{batch} {size}x{size} [{}]: eval forward {eval_f:.0} ms, eval input-grad fwd+bwd {attack:.0} ms, train fwd+bwd {train:.0} ms",
            if reference { "candle grouped conv2d" } else { "depthwise op" }
        );
    }
    Ok(())
}
