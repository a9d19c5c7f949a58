//! Gradient accumulation of the backward (candle-core as patched in `vendor/`): the first
//! contribution to a tensor's gradient is stored as it is, later ones are added. These pin
//! what the patch must keep: sums over several uses, independent gradients for operands that
//! received the same contribution, and contiguous gradients from strided contributions.

use candle_core::{Device, Tensor, Var};

fn values(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1().unwrap()
}

#[test]
fn a_tensor_used_several_times_gets_the_sum_of_its_contributions() {
    let dev = Device::Cpu;
    let x = Var::new(&[1f32, -2.0, 3.0], &dev).unwrap();
    // x + x (one op, the same operand twice), x · 3 and a residual-style reuse of x
    let y = ((x.as_tensor() + x.as_tensor()).unwrap() + (x.as_tensor() * 3.0).unwrap()).unwrap();
    let z = (&y + x.as_tensor()).unwrap().sum_all().unwrap();
    let g = z.backward().unwrap();
    assert_eq!(values(g.get(&x).unwrap()), vec![6.0, 6.0, 6.0]);
}

#[test]
fn operands_that_receive_the_same_contribution_keep_separate_gradients() {
    let dev = Device::Cpu;
    let a = Var::new(&[1f32, 2.0], &dev).unwrap();
    let b = Var::new(&[3f32, 4.0], &dev).unwrap();
    // a + b hands both the same gradient; a gets a second contribution from a · a
    let s = (a.as_tensor() + b.as_tensor()).unwrap();
    let loss = ((&s * 2.0).unwrap() + a.as_tensor().sqr().unwrap())
        .unwrap()
        .sum_all()
        .unwrap();
    let g = loss.backward().unwrap();
    assert_eq!(values(g.get(&a).unwrap()), vec![4.0, 6.0]);
    assert_eq!(values(g.get(&b).unwrap()), vec![2.0, 2.0]);
}

#[test]
fn a_strided_first_contribution_is_stored_contiguous_with_its_values() {
    let dev = Device::Cpu;
    let w = Var::new(&[[1f32, 2.0, 3.0], [4.0, 5.0, 6.0]], &dev).unwrap();
    let m = Tensor::new(&[[1f32, 10.0], [100.0, 1000.0], [0.5, 0.25]], &dev).unwrap();
    // the gradient of wᵀ reaches w through a transpose (a strided view)
    let loss = (w.as_tensor().t().unwrap() * &m)
        .unwrap()
        .sum_all()
        .unwrap();
    let g = loss.backward().unwrap();
    let gw = g.get(&w).unwrap();
    assert!(gw.is_contiguous());
    assert_eq!(values(gw), vec![1.0, 100.0, 0.5, 10.0, 1000.0, 0.25]);
}

#[test]
fn a_broadcast_operand_gets_the_reduced_gradient() {
    let dev = Device::Cpu;
    let x = Var::new(&[[1f32], [2.0]], &dev).unwrap();
    let y = Tensor::new(&[[1f32, 2.0, 3.0], [4.0, 5.0, 6.0]], &dev).unwrap();
    let loss = x.as_tensor().broadcast_mul(&y).unwrap().sum_all().unwrap();
    let g = loss.backward().unwrap();
    assert_eq!(values(g.get(&x).unwrap()), vec![6.0, 15.0]);
}
