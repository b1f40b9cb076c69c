//! Frozen parameters: `backward_frozen` computes no gradient for them, skips the whole
//! backward below the last trainable layer, and `Fit::freeze` trains to exactly the
//! same weights as a full backward whose frozen gradients are thrown away.
use core::ops::Range;

use nn_core::layer::Frozen;
use nn_core::prelude::*;
use nn_core::train::Select;

network! {
    /// A convolution, a frozen-able dense layer in the middle, and a head.
    pub struct Net: [1, 6, 6] -> [3] {
        conv: Conv2d { filters: 4, kernel: 3, padding: Same },
        relu: Relu,
        pool: MaxPool2d { size: 2 },
        flat: Flatten,
        hidden: Dense { units: 8, activation: Tanh },
        head: Dense { units: 3 },
    }
}

/// A value no gradient computation produces: an entry still holding it was not touched.
const UNTOUCHED: f32 = 123.0;

fn ranges(select: &[Select]) -> Vec<Range<usize>> {
    let layer = Net;
    select.iter().flat_map(|s| s.ranges(&layer)).map(|(r, _)| r).collect()
}

fn batch() -> (Vec<f32>, Vec<f32>) {
    let mut rng = Rng::new(3);
    let x: Vec<f32> = (0..5 * 36).map(|_| rng.normal()).collect();
    let t: Vec<f32> = (0..5).map(|i| (i % 3) as f32).collect();
    (x, t)
}

/// The full backward's parameter gradients and input gradient.
fn full_backward(model: &Model<Net>, x: &[f32], t: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let mut model = model.clone();
    let mut ws = Workspace::<Net>::new();
    ws.zero_grads();
    model.forward_train(&mut ws, x, &mut Rng::new(0));
    ws.loss(&SparseCategoricalCrossEntropy::from_logits(), t);
    let mut dx = vec![0.0; x.len()];
    model.backward(&mut ws, x, Some(&mut dx));
    (ws.grads().to_vec(), dx)
}

/// `backward_frozen` from gradients preset to `UNTOUCHED` in the frozen ranges (0
/// elsewhere): the gradients, and the input gradient when `want_dx`.
fn frozen_backward(
    model: &Model<Net>,
    x: &[f32],
    t: &[f32],
    frozen: &[Range<usize>],
    want_dx: bool,
) -> (Vec<f32>, Vec<f32>) {
    let mut model = model.clone();
    let mut ws = Workspace::<Net>::new();
    ws.zero_grads();
    for r in frozen {
        ws.grads_mut()[r.clone()].fill(UNTOUCHED);
    }
    model.forward_train(&mut ws, x, &mut Rng::new(0));
    ws.loss(&SparseCategoricalCrossEntropy::from_logits(), t);
    let mut dx = vec![f32::NAN; x.len()];
    model.backward_frozen(&mut ws, x, if want_dx { Some(&mut dx) } else { None }, Frozen::new(frozen));
    (ws.grads().to_vec(), dx)
}

fn in_ranges(i: usize, ranges: &[Range<usize>]) -> bool {
    ranges.iter().any(|r| r.contains(&i))
}

#[test]
fn frozen_ranges_cover_what_they_should() {
    let ranges = [4..10, 0..4, 12..20, 15..30];
    let frozen = Frozen::new(&ranges);
    assert!(frozen.all(10), "adjacent ranges in any order cover 0..10");
    assert!(!frozen.all(11));
    assert!(frozen.all(0));
    assert!(frozen.shifted(12).all(18), "overlapping ranges cover 12..30");
    assert!(!frozen.shifted(12).all(19));
    assert!(!frozen.shifted(10).all(1));
    assert!(frozen.shifted(10).all(0));
    assert!(!Frozen::NONE.all(1) && Frozen::NONE.all(0));
}

#[test]
fn frozen_layers_compute_no_parameter_gradient() {
    let model = Model::<Net>::new(7);
    let (x, t) = batch();
    let (full, full_dx) = full_backward(&model, &x, &t);
    let cases: [(&str, Vec<Select>); 4] = [
        ("frozen prefix", vec![Select::layer("conv"), Select::layer("hidden")]),
        ("frozen middle layer", vec![Select::layer("hidden")]),
        ("frozen head", vec![Select::layer("head")]),
        ("frozen weights only (partly frozen layers)", vec![Select::Weights]),
    ];
    for (name, select) in cases {
        let frozen = ranges(&select);
        assert!(!frozen.is_empty(), "{name}");
        for want_dx in [false, true] {
            let (grads, dx) = frozen_backward(&model, &x, &t, &frozen, want_dx);
            for (i, (&g, &f)) in grads.iter().zip(&full).enumerate() {
                if in_ranges(i, &frozen) {
                    // Whole frozen layers leave their gradients alone; a partly frozen
                    // layer may compute them (`Fit` discards them).
                    if select != [Select::Weights] {
                        assert_eq!(g, UNTOUCHED, "{name}: gradient {i} of a frozen layer was computed");
                    }
                } else {
                    assert_eq!(g, f, "{name}: trainable gradient {i} differs from the full backward's");
                }
            }
            if want_dx {
                assert_eq!(dx, full_dx, "{name}: input gradient");
            } else {
                assert!(dx.iter().all(|v| v.is_nan()), "{name}: dx written though not wanted");
            }
        }
    }
    // Nothing frozen: exactly the full backward.
    let (grads, dx) = frozen_backward(&model, &x, &t, &[], true);
    assert_eq!((grads, dx), (full, full_dx));
}

#[test]
fn a_frozen_prefix_skips_its_backward_entirely() {
    // With the prefix frozen and no input gradient wanted, the convolution's backward
    // does not run: its gradients keep the preset sentinel, and so do the gradients of
    // `hidden`, whose input gradient nobody needs.
    let model = Model::<Net>::new(9);
    let (x, t) = batch();
    let frozen = ranges(&[Select::layer("conv"), Select::layer("hidden")]);
    let (grads, _) = frozen_backward(&model, &x, &t, &frozen, false);
    let head = ranges(&[Select::layer("head")]);
    assert_eq!(head, [Net::PARAMS - 27..Net::PARAMS - 3, Net::PARAMS - 3..Net::PARAMS]);
    assert!(grads[..Net::PARAMS - 27].iter().all(|&g| g == UNTOUCHED));
    assert!(grads[Net::PARAMS - 27..].iter().any(|&g| g != 0.0));
}

#[test]
fn fit_with_frozen_layers_trains_as_a_full_backward_that_discards_their_gradients() {
    let mut rng = Rng::new(11);
    let n = 24;
    let x: Vec<f32> = (0..n * 36).map(|_| rng.normal()).collect();
    let t: Vec<f32> = (0..n).map(|i| (i % 3) as f32).collect();
    let data = Dataset::new(x.clone(), 36, t.clone(), 1).unwrap();
    for select in [vec![Select::layer("conv"), Select::layer("hidden")], vec![Select::layer("hidden")]] {
        let frozen = ranges(&select);
        let mut fitted = Model::<Net>::new(5);
        let mut fit = Fit::new(Adam::new(0.01), SparseCategoricalCrossEntropy::from_logits())
            .epochs(3)
            .batch_size(8)
            .shuffle(false);
        for s in &select {
            fit = fit.freeze(s.clone());
        }
        fit.run(&mut fitted, &data, None).unwrap();

        // The same steps by hand: full backward, frozen gradients zeroed, frozen
        // values restored after the step.
        let mut model = Model::<Net>::new(5);
        let before = model.params().to_vec();
        let mut ws = Workspace::<Net>::new();
        let mut opt = OptimizerState::new(Adam::new(0.01));
        let loss = SparseCategoricalCrossEntropy::from_logits();
        let mut rng = Rng::new(0);
        for _ in 0..3 {
            for b in 0..n / 8 {
                let (xb, tb) = (&x[b * 8 * 36..(b + 1) * 8 * 36], &t[b * 8..(b + 1) * 8]);
                ws.zero_grads();
                model.forward_train(&mut ws, xb, &mut rng);
                ws.loss(&loss, tb);
                model.backward(&mut ws, xb, None);
                for r in &frozen {
                    ws.grads_mut()[r.clone()].fill(0.0);
                }
                opt.step(model.params_mut(), ws.grads());
                for r in &frozen {
                    model.params_mut()[r.clone()].copy_from_slice(&before[r.clone()]);
                }
            }
        }
        assert_eq!(fitted.params(), model.params(), "{select:?}: Fit differs from the full backward");
        for r in &frozen {
            assert_eq!(fitted.params()[r.clone()], before[r.clone()], "{select:?}: a frozen value changed");
        }
        assert_ne!(fitted.params(), &before[..], "{select:?}: nothing trained");
    }
}

network! {
    /// A network around a batch norm in inference mode (frozen statistics).
    pub struct FrozenNorm: [2, 4, 4] -> [3] {
        conv: Conv2d { filters: 3, kernel: 3, padding: Same },
        norm: BatchNorm2d { inference: true },
        relu: Relu,
        flat: Flatten,
        head: Dense { units: 3 },
    }
}

#[test]
fn a_batch_norm_in_inference_mode_trains_with_its_running_statistics() {
    let mut model = Model::<FrozenNorm>::new(4);
    // Running statistics other than the initial ones.
    let buffers: Vec<f32> = [0.3f32, -0.2, 0.1, 1.5, 0.7, 2.0, 5.0].to_vec();
    let at = FrozenNorm::PARAMS;
    model.state_mut()[at..].copy_from_slice(&buffers);
    let mut rng = Rng::new(8);
    let x: Vec<f32> = (0..4 * 32).map(|_| rng.normal()).collect();
    let predicted = model.predict(&x).unwrap();
    let mut ws = Workspace::<FrozenNorm>::new();
    let y = model.forward_train(&mut ws, &x, &mut Rng::new(0)).to_vec();
    assert_eq!(y, predicted, "the training forward normalises with the running statistics");
    assert_eq!(model.buffers(), &buffers[..], "the running statistics did not move");
}
