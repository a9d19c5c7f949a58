//! The depthwise custom op against candle's grouped conv2d.

use candle_core::{Device, Tensor, Var};
use dfr_model::depthwise::{depthwise_conv2d, depthwise_conv2d_reference, Padding2d};

fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

fn max_abs(a: &Tensor) -> f32 {
    a.abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

fn check(n: usize, c: usize, h: usize, w: usize, k: usize, stride: usize, pad: Padding2d) {
    let dev = Device::Cpu;
    let x = Var::from_tensor(&Tensor::randn(0f32, 1., (n, c, h, w), &dev).unwrap()).unwrap();
    let wt = Var::from_tensor(&Tensor::randn(0f32, 1., (c, 1, k, k), &dev).unwrap()).unwrap();
    let ours = depthwise_conv2d(x.as_tensor(), wt.as_tensor(), stride, pad).unwrap();
    let reference = depthwise_conv2d_reference(x.as_tensor(), wt.as_tensor(), stride, pad).unwrap();
    assert_eq!(
        ours.dims(),
        reference.dims(),
        "{n} {c} {h} {w} k{k} s{stride} {pad:?}"
    );
    let tag = format!("n{n} c{c} {h}x{w} k{k} s{stride} {pad:?}");
    assert!(max_diff(&ours, &reference) < 1e-4, "values {tag}");
    // random cotangent
    let r = Tensor::randn(0f32, 1., ours.dims(), &dev).unwrap();
    let g1 = (ours * &r).unwrap().sum_all().unwrap().backward().unwrap();
    let g2 = (reference * &r)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    for (what, v) in [("input", &x), ("weight", &wt)] {
        let a = g1.get(v.as_tensor()).unwrap();
        let b = g2.get(v.as_tensor()).unwrap();
        let tol = 1e-5 * max_abs(b).max(1.0) * 10.0;
        assert!(
            max_diff(a, b) < tol,
            "{what} grad {tag}: {} (tol {tol})",
            max_diff(a, b)
        );
    }
}

#[test]
fn matches_grouped_conv_on_random_shapes() {
    let p = Padding2d::symmetric;
    let asym = |top, bottom, left, right| Padding2d {
        top,
        bottom,
        left,
        right,
    };
    check(2, 3, 8, 8, 3, 1, p(1));
    check(2, 4, 9, 7, 3, 2, p(1));
    check(1, 5, 11, 13, 5, 1, p(2));
    check(3, 2, 12, 10, 5, 2, p(2));
    check(2, 3, 8, 8, 3, 2, asym(0, 1, 0, 1)); // TF SAME, even input
    check(2, 3, 9, 10, 5, 2, asym(1, 2, 2, 1));
    check(1, 2, 6, 6, 3, 1, p(0));
    check(2, 2, 5, 5, 7, 1, p(3));
    check(1, 3, 4, 17, 3, 3, asym(2, 0, 1, 3));
    check(2, 16, 32, 32, 3, 1, p(1)); // long rows: vectorised paths
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
