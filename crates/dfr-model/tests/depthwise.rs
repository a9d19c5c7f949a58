//! The depthwise custom op against candle's grouped conv2d.

use candle_core::{Device, Tensor, Var};
use dfr_model::depthwise::{depthwise_conv2d, depthwise_conv2d_reference, Padding2d};

use crate::common::{diff as max_diff, max_abs};

/// The op on `dev` against candle's grouped conv2d on the CPU: values and both gradients.
#[allow(clippy::too_many_arguments)]
fn check_on(
    dev: &Device,
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    k: usize,
    stride: usize,
    pad: Padding2d,
) {
    let cpu = Device::Cpu;
    let x0 = Tensor::randn(0f32, 1., (n, c, h, w), &cpu).unwrap();
    let w0 = Tensor::randn(0f32, 1., (c, 1, k, k), &cpu).unwrap();
    let (x, wt) = (
        Var::from_tensor(&x0.to_device(dev).unwrap()).unwrap(),
        Var::from_tensor(&w0.to_device(dev).unwrap()).unwrap(),
    );
    let (xr, wr) = (
        Var::from_tensor(&x0).unwrap(),
        Var::from_tensor(&w0).unwrap(),
    );
    let ours = depthwise_conv2d(x.as_tensor(), wt.as_tensor(), stride, pad).unwrap();
    let reference =
        depthwise_conv2d_reference(xr.as_tensor(), wr.as_tensor(), stride, pad).unwrap();
    assert_eq!(
        ours.dims(),
        reference.dims(),
        "{n} {c} {h} {w} k{k} s{stride} {pad:?}"
    );
    let tag = format!("{dev:?} n{n} c{c} {h}x{w} k{k} s{stride} {pad:?}");
    assert!(
        max_diff(&ours.to_device(&cpu).unwrap(), &reference) < 1e-4,
        "values {tag}"
    );
    // random cotangent
    let r = Tensor::randn(0f32, 1., ours.dims(), &cpu).unwrap();
    let g1 = (ours * r.to_device(dev).unwrap())
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    let g2 = (reference * &r)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    for (what, v, vr) in [("input", &x, &xr), ("weight", &wt, &wr)] {
        let a = g1.get(v.as_tensor()).unwrap().to_device(&cpu).unwrap();
        let b = g2.get(vr.as_tensor()).unwrap();
        let tol = 1e-5 * max_abs(b).max(1.0) * 10.0;
        assert!(
            max_diff(&a, b) < tol,
            "{what} grad {tag}: {} (tol {tol})",
            max_diff(&a, b)
        );
    }
}

fn check(n: usize, c: usize, h: usize, w: usize, k: usize, stride: usize, pad: Padding2d) {
    check_on(&Device::Cpu, n, c, h, w, k, stride, pad)
}

/// The shapes every device is checked on: odd sizes, strides 1–3, kernels 3–7, symmetric,
/// TF-SAME and arbitrary asymmetric padding.
fn random_shapes(dev: &Device) {
    let p = Padding2d::symmetric;
    let asym = |top, bottom, left, right| Padding2d {
        top,
        bottom,
        left,
        right,
    };
    check_on(dev, 2, 3, 8, 8, 3, 1, p(1));
    check_on(dev, 2, 4, 9, 7, 3, 2, p(1));
    check_on(dev, 1, 5, 11, 13, 5, 1, p(2));
    check_on(dev, 3, 2, 12, 10, 5, 2, p(2));
    check_on(dev, 2, 3, 8, 8, 3, 2, asym(0, 1, 0, 1)); // TF SAME, even input
    check_on(dev, 2, 3, 9, 10, 5, 2, asym(1, 2, 2, 1));
    check_on(dev, 1, 2, 6, 6, 3, 1, p(0));
    check_on(dev, 2, 2, 5, 5, 7, 1, p(3));
    check_on(dev, 1, 3, 4, 17, 3, 3, asym(2, 0, 1, 3));
    check_on(dev, 2, 16, 32, 32, 3, 1, p(1)); // long rows: vectorised paths
                                              // Maps past 16×16 (the plane kernels on the CPU): strides 1–3, kernels 3–7, asymmetric.
    check_on(dev, 2, 3, 17, 19, 5, 2, asym(1, 2, 2, 1));
    check_on(dev, 1, 2, 20, 15, 7, 1, p(3));
    check_on(dev, 2, 3, 18, 18, 3, 2, Padding2d::tf_same(18, 18, 3, 3, 2));
    check_on(dev, 1, 3, 16, 23, 3, 3, asym(2, 0, 1, 3));
    // Maps of at most 16×16 (the channels-last kernels on the CPU), with channel counts
    // below, at and past one block of 64, odd ones included.
    check_on(dev, 2, 70, 4, 4, 5, 1, p(2));
    check_on(dev, 3, 130, 2, 2, 5, 1, p(2));
    check_on(dev, 1, 64, 1, 1, 3, 1, p(1));
    check_on(dev, 2, 67, 4, 4, 3, 2, asym(0, 1, 0, 1)); // TF SAME, 4×4 → 2×2
    check_on(dev, 1, 9, 3, 5, 3, 1, asym(2, 0, 1, 2));
    check_on(dev, 2, 5, 4, 3, 5, 2, p(2));
}

#[test]
fn matches_grouped_conv_on_random_shapes() {
    random_shapes(&Device::Cpu);
    // A batch large enough for the weight-gradient reduction to span many blocks.
    check(4, 8, 40, 36, 3, 2, Padding2d::tf_same(40, 36, 3, 3, 2));
}

/// The CUDA kernels (`cargo test -p dfr-model --features cuda` on a machine with a GPU).
#[cfg(feature = "cuda")]
#[test]
fn cuda_kernels_match_grouped_conv_on_random_shapes() {
    let dev = Device::new_cuda(0).expect("the `cuda` feature's tests need a CUDA device");
    random_shapes(&dev);
    check_on(
        &dev,
        4,
        8,
        40,
        36,
        3,
        2,
        Padding2d::tf_same(40, 36, 3, 3, 2),
    );
    check_on(&dev, 16, 32, 112, 112, 3, 1, Padding2d::symmetric(1)); // B0 stage 1 at 224
}

#[test]
fn tf_same_padding() {
    let p = Padding2d::tf_same(224, 224, 3, 3, 2);
    assert_eq!((p.top, p.bottom, p.left, p.right), (0, 1, 0, 1));
    let p = Padding2d::tf_same(224, 224, 5, 5, 2);
    assert_eq!((p.top, p.bottom), (1, 2));
    let p = Padding2d::tf_same(7, 7, 5, 5, 1);
    assert_eq!((p.top, p.bottom), (2, 2));
}

#[test]
fn constant_weight_gets_no_gradient() {
    let dev = Device::Cpu;
    let x = Var::from_tensor(&Tensor::randn(0f32, 1., (2, 3, 8, 8), &dev).unwrap()).unwrap();
    let w = Tensor::randn(0f32, 1., (3, 1, 3, 3), &dev).unwrap();
    let y = depthwise_conv2d(x.as_tensor(), &w, 1, Padding2d::symmetric(1)).unwrap();
    let g = y.sum_all().unwrap().backward().unwrap();
    assert!(g.get(x.as_tensor()).is_some());
    // the op did not compute a weight gradient (candle's conv2d would insert one)
    assert!(g.get(&w).is_none());
}
