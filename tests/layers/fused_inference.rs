//! Inference of a sequence runs some pairs of layers as one pass: a batch norm and the
//! ReLU layer after it over the batch norm's input in place, a ReLU layer and the max
//! pooling after it as one pooling of the ReLU's values, and skips the layers that are
//! the identity in inference (flattening, dropout). Checked here: the outputs of
//! `forward_slices` and `predict_one` are, bit for bit, those of the training forward in
//! evaluation mode, which runs every layer on its own, at batch 1 and 3, with inputs
//! that hold NaN, infinities and signed zeros, under every instruction set the tests
//! run with (`NN_ISA`).
use nn_core::prelude::*;
use nn_core::Shape;

network! {
    /// Both pairs inside the sequence, after a convolution, and the identities.
    pub struct Fused: [2, 8, 8] -> [6] {
        conv1: Conv2d { filters: 16, kernel: 3, padding: Same },
        bn1: BatchNorm2d,
        relu1: Relu,
        conv2: Conv2d { filters: 8, kernel: 3, padding: Same },
        relu2: Relu,
        pool: MaxPool2d { size: 2 } => [8, 4, 4],
        flat: Flatten,
        drop: Dropout { rate: 0.3 },
        fc: Dense { units: 6 },
    }

    /// The pairs at the end of a sequence: the ReLU's value is the output.
    pub struct NormLast: [2, 4, 4] -> [4, 4, 4] {
        conv: Conv2d { filters: 4, kernel: 3, padding: Same },
        bn: BatchNorm2d,
        relu: Relu,
    }

    /// A batch norm first (not in place: the input is the caller's), two ReLU layers,
    /// the second's pooling the last layer, whose window is not the 2x2 fast path.
    pub struct PoolLast: [3, 6, 6] -> [3, 3, 3] {
        bn: BatchNorm2d,
        relu1: Relu,
        relu2: Relu,
        pool: MaxPool2d { size: 3, stride: 2, padding: 1 } => [3, 3, 3],
    }

    /// A batch norm followed by another activation (no pass in common), a flattening
    /// first.
    pub struct Other: [2, 4, 4] -> [5] {
        flat: Flatten,
        fc1: Dense { units: 32 },
        reshape: Reshape { shape: [2, 4, 4] },
        bn: BatchNorm2d,
        tanh: Tanh,
        relu: Relu,
        pool: MaxPool2d { size: 2 } => [2, 2, 2],
        flat2: Flatten,
        fc2: Dense { units: 5 },
    }
}

/// The model of `seed` with random batch norm statistics and scales (running variances
/// in `[0.5, 2)`), so that the normalisation is not the identity.
fn model<N: Network>(seed: u64) -> Model<N> {
    let mut model = Model::<N>::new(seed);
    let mut tensors = Vec::new();
    model.visit_tensors(&mut |t| tensors.push((t.path.to_string(), t.offset, t.len, t.trainable)));
    let mut rng = Rng::new(seed + 100);
    let params = N::PARAMS;
    for (name, offset, len, trainable) in tensors {
        let at = if trainable { offset } else { params + offset };
        let (lo, hi) = if name.ends_with("running_var") { (0.5, 2.0) } else { (-1.0, 1.0) };
        if name.contains("bn") && !name.ends_with("num_batches_tracked") {
            for v in &mut model.state_mut()[at..at + len] {
                *v = rng.uniform_in(lo, hi);
            }
        }
    }
    model
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|v| if v.is_nan() { u32::MAX } else { v.to_bits() }).collect()
}

fn check<N: Network>(seed: u64) {
    let mut model = model::<N>(seed);
    let mut rng = Rng::new(seed + 1);
    let special = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, -0.0, 0.0];
    for batch in [1, 3] {
        let len = <N::Input as Shape>::LEN;
        let mut x: Vec<f32> = (0..batch * len).map(|_| rng.uniform_in(-2.0, 2.0)).collect();
        // The last sample holds special values (with one sample, a NaN would reach
        // every output through the dense layers; the others keep finite outputs).
        for (i, &v) in special.iter().enumerate() {
            if batch > 1 || v.is_finite() {
                x[(batch - 1) * len + (7 * i + 3) % len] = v;
            }
        }
        let mut y = vec![0.0; batch * <N::Output as Shape>::LEN];
        let mut scratch = vec![f32::NAN; batch * N::FORWARD_SCRATCH];
        model.forward_slices(&x, &mut y, &mut scratch);
        model.eval();
        let mut ws = Workspace::<N>::new();
        let reference = model.forward_train(&mut ws, &x, &mut rng).to_vec();
        assert_eq!(bits(&y), bits(&reference), "{}: batch {batch}", N::NAME);
        assert!(y[..<N::Output as Shape>::LEN].iter().all(|v| v.is_finite()), "{}: {y:?}", N::NAME);
        if batch == 1 {
            let one = model.predict_one(&Tensor::from_slice(&x).expect("one sample"));
            assert_eq!(bits(one.as_slice()), bits(&reference), "{}: predict_one", N::NAME);
        }
    }
}

#[test]
fn fused_layers_give_the_bits_of_the_layers_one_by_one() {
    check::<Fused>(1);
    check::<NormLast>(2);
    check::<PoolLast>(3);
    check::<Other>(4);
}

#[test]
fn skipped_identities_need_no_scratch_of_their_own() {
    // `Other` starts with a flattening: its inference scratch is the rest's.
    const { assert!(Other::FORWARD_SCRATCH <= Other::SCRATCH) };
    check::<Other>(5);
}
