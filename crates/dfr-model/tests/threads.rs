//! Results do not depend on the number of threads: a training step's loss, every parameter's
//! gradient and the input gradient are bit-identical in pools of 1, 2 and 3 threads (a study
//! may run its (arm, seed) runs side by side, one thread each, or one at a time on every
//! core, and must get the same numbers either way).

use candle_core::{DType, Device, Tensor, Var};
use dfr_model::{Arch, EfficientNet, EfficientNetConfig};

/// Loss, input gradient and every parameter gradient (in `named_params` order) of one step.
fn step(m: &EfficientNet, x: &Tensor, train: bool) -> Vec<Vec<f32>> {
    let xv = Var::from_tensor(x).unwrap();
    m.set_seed(7);
    let logits = m.forward_t(xv.as_tensor(), train).unwrap();
    let target = Tensor::new(
        &[0u32, 1, 1, 0, 1, 0, 0, 1, 1][..x.dim(0).unwrap()],
        &Device::Cpu,
    )
    .unwrap();
    let loss = candle_nn::loss::cross_entropy(&logits, &target).unwrap();
    let g = loss.backward().unwrap();
    let flat = |t: &Tensor| {
        t.flatten_all()
            .unwrap()
            .to_dtype(DType::F32)
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()
    };
    let mut out = vec![
        flat(&loss.reshape(1).unwrap()),
        flat(g.get(xv.as_tensor()).unwrap()),
    ];
    if train {
        for (name, p) in m.named_params() {
            let gp = g
                .get(p.var().as_tensor())
                .unwrap_or_else(|| panic!("no gradient for {name}"));
            out.push(flat(gp));
        }
    }
    out
}

fn in_pool<T: Send>(threads: usize, f: impl FnOnce() -> T + Send) -> T {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
        .install(f)
}

#[test]
fn a_step_is_bit_identical_for_any_number_of_threads() {
    // Batch 9 (odd, not a multiple of any pool size) at 40 px, train mode (batch statistics,
    // weight gradients) and eval mode (the input gradient of an attack); batch 1 (every
    // product split over the threads).
    for (n, train) in [(9, true), (9, false), (1, true)] {
        let x = Tensor::rand(0f32, 1., (n, 3, 40, 40), &Device::Cpu).unwrap();
        let fresh = || {
            let m =
                EfficientNet::new(EfficientNetConfig::new(Arch::B0, 2), &Device::Cpu, 5).unwrap();
            m.set_stochastic(false);
            m
        };
        let one = in_pool(1, || step(&fresh(), &x, train));
        for threads in [2, 3] {
            let many = in_pool(threads, || step(&fresh(), &x, train));
            assert_eq!(one.len(), many.len());
            let model = fresh();
            let names = ["loss".to_string(), "input gradient".to_string()]
                .into_iter()
                .chain(model.named_params().iter().map(|(n, _)| format!("∂{n}")));
            for (name, (a, b)) in names.zip(one.iter().zip(&many)) {
                let differ = a
                    .iter()
                    .zip(b)
                    .filter(|(u, v)| u.to_bits() != v.to_bits())
                    .count();
                assert_eq!(
                    differ, 0,
                    "batch {n}, train={train}, {threads} threads: {name} differs in {differ} of {} values",
                    a.len()
                );
            }
        }
    }
}
