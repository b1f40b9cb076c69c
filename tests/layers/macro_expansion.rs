//! `network!` against the expansion written by hand in `handwritten_expansion.rs`:
//! the same compile-time sizes, tensor names and offsets, and the same numbers; then
//! networks used as layers of other networks.
use crate::standalone::Standalone;
use nn_core::layer::SummaryRow;
use nn_core::prelude::*;

use crate::handwritten_expansion as handwritten;

network! {
    /// 64 -> 32 -> 10, as `handwritten::Mlp`.
    pub struct Mlp: [64] -> [10] {
        fc1: Dense { units: 32, activation: Relu },
        drop: Dropout { rate: 0.2 } => [32],
        fc2: Dense { units: 10 },
    }
}

network! {
    /// 64 -> 32 -> 16.
    pub struct Encoder: [64] -> [16] {
        fc1: Dense { units: 32, activation: Relu },
        fc2: Dense { units: 16, activation: Tanh },
    }

    /// An encoder, then a classifier head on its features.
    pub struct Classifier: [64] -> [10] {
        encoder: Encoder,
        act: LeakyRelu { alpha: 0.1 },
        head: Dense { units: 10, bias: false },
    }

    /// A network whose last layer is a network.
    pub struct Wrapper: [64] -> [16] {
        encoder: Encoder => [16],
    }
}

fn tensors<L: Layer + Default>(model: &Model<L>) -> Vec<(String, Vec<usize>, usize, usize)> {
    let mut out = Vec::new();
    model.visit_tensors(&mut |t| out.push((t.path.to_string(), t.shape.to_vec(), t.offset, t.len)));
    out
}

fn summary_rows<L: Layer + Default>() -> Vec<(String, String, usize, Vec<usize>, usize)> {
    let mut rows = Vec::new();
    L::default().visit_summary("", 0, &mut |r: &SummaryRow<'_>| {
        rows.push((r.name.to_string(), r.kind.to_string(), r.depth, r.output.to_vec(), r.params))
    });
    rows
}

/// A deterministic input of `n` values in [-1, 1].
fn input(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    (0..n).map(|_| rng.uniform_in(-1.0, 1.0)).collect()
}

/// `act(W x + b)` with `W` `[out, in]` row-major, computed naively in `f64`.
fn dense_reference(w: &[f32], b: Option<&[f32]>, x: &[f32], act: impl Fn(f64) -> f64) -> Vec<f32> {
    let outputs = w.len() / x.len();
    (0..outputs)
        .map(|o| {
            let z: f64 = (0..x.len()).map(|i| f64::from(w[o * x.len() + i]) * f64::from(x[i])).sum::<f64>()
                + b.map_or(0.0, |b| f64::from(b[o]));
            act(z) as f32
        })
        .collect()
}

fn assert_close(a: &[f32], b: &[f32]) {
    assert_eq!(a.len(), b.len());
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!((x - y).abs() <= 1e-5 * (1.0 + y.abs()), "index {i}: {x} vs {y}");
    }
}

#[test]
fn sizes_match_the_handwritten_expansion() {
    assert_eq!(Mlp::PARAMS, handwritten::Mlp::PARAMS);
    assert_eq!(Mlp::PARAMS, 64 * 32 + 32 + 32 * 10 + 10);
    assert_eq!(Mlp::BUFFERS, handwritten::Mlp::BUFFERS);
    assert_eq!(Mlp::CACHE, handwritten::Mlp::CACHE);
    assert_eq!(Mlp::SCRATCH, handwritten::Mlp::SCRATCH);
    assert_eq!(Mlp::PEAK_ACTIVATION_BYTES, handwritten::Mlp::PEAK_ACTIVATION_BYTES);
    assert_eq!(Mlp::VALUE_STACK, handwritten::Mlp::VALUE_STACK);
    assert_eq!(Mlp::VALUE_SCRATCH, handwritten::Mlp::VALUE_SCRATCH);
    assert_eq!(<Mlp as Layer>::KIND, "Mlp");
    assert_eq!(<Mlp as Network>::NAME, "Mlp");
    assert_eq!(<Mlp as Layer>::Input::DIMS, &[64]);
    assert_eq!(<Mlp as Layer>::Output::DIMS, &[10]);
}

#[test]
fn tensor_names_and_offsets_match_the_handwritten_expansion() {
    let model = Model::<Mlp>::new(3);
    let reference = Model::<handwritten::Mlp>::new(3);
    assert_eq!(tensors(&model), tensors(&reference));
    assert_eq!(
        tensors(&model),
        vec![
            ("fc1.weight".to_string(), vec![32, 64], 0, 2048),
            ("fc1.bias".to_string(), vec![32], 2048, 32),
            ("fc2.weight".to_string(), vec![10, 32], 2080, 320),
            ("fc2.bias".to_string(), vec![10], 2400, 10),
        ]
    );
    // Same layer order and initialisers: the same parameters from the same seed.
    assert_eq!(model.state(), reference.state());
}

#[test]
fn forward_matches_the_handwritten_expansion_and_a_naive_reference() {
    let model = Model::<Mlp>::new(11);
    let reference = Model::<handwritten::Mlp>::from_state(handwritten::Mlp, model.state().to_vec()).unwrap();
    let x = Tensor::<Shape1<64>>::from_slice(&input(64, 5)).unwrap();
    let y = model.predict_one(&x);
    assert_eq!(y, reference.predict_one(&x));

    let p = model.params();
    let hidden = dense_reference(&p[..2048], Some(&p[2048..2080]), &x, |z| z.max(0.0));
    let expected = dense_reference(&p[2080..2400], Some(&p[2400..2410]), &hidden, |z| z);
    assert_close(&y, &expected);

    // Batch inference through the slices gives the same rows, bit for bit: every
    // sample is summed as it is alone.
    let batch = [input(64, 5), input(64, 6)].concat();
    let mut out = vec![0.0; 2 * 10];
    let mut scratch = vec![0.0; 2 * Mlp::SCRATCH];
    model.forward_slices(&batch, &mut out, &mut scratch);
    assert_eq!(&out[..10], y.as_slice());
}

/// `forward_train` then `backward` with `dy = y - 0.5`: outputs, cache, `dx` and
/// gradients.
fn training_pass<L: Layer>(layer: &L, params: &[f32], x: &[f32]) -> [Vec<f32>; 4] {
    let batch = x.len() / <L::Input as Shape>::LEN;
    let mut y = vec![0.0; batch * <L::Output as Shape>::LEN];
    let mut s = Standalone::new::<L>(batch, 9);
    // Zeros, so that the caches of the two expansions compare equal where unwritten.
    s.cache.fill(0.0);
    layer.forward_train(x, &mut y, s.train(params));
    let mut dy: Vec<f32> = y.iter().map(|v| v - 0.5).collect();
    let mut dx = vec![0.0; x.len()];
    layer.backward(x, &y, &mut dy, Some(&mut dx), s.backward(params));
    [y, s.cache, dx, s.grads]
}

#[test]
fn training_passes_match_the_handwritten_expansion() {
    let model = Model::<Mlp>::new(2);
    let x = [input(64, 1), input(64, 2), input(64, 3)].concat();
    let ours = training_pass(&Mlp, model.params(), &x);
    let reference = training_pass(&handwritten::Mlp, model.params(), &x);
    assert_eq!(ours, reference);
    // Dropout was active: some hidden units of the cached mask are zero.
    assert!(ours[1].contains(&0.0));
    assert!(ours[3].iter().any(|&g| g != 0.0));
}

#[test]
fn a_network_used_as_a_layer_nests_its_tensor_names() {
    let model = Model::<Classifier>::new(4);
    assert_eq!(Classifier::PARAMS, Encoder::PARAMS + 16 * 10);
    assert_eq!(
        tensors(&model),
        vec![
            ("encoder.fc1.weight".to_string(), vec![32, 64], 0, 2048),
            ("encoder.fc1.bias".to_string(), vec![32], 2048, 32),
            ("encoder.fc2.weight".to_string(), vec![16, 32], 2080, 512),
            ("encoder.fc2.bias".to_string(), vec![16], 2592, 16),
            ("head.weight".to_string(), vec![10, 16], 2608, 160),
        ]
    );
    let wrapper = Model::<Wrapper>::new(4);
    assert_eq!(tensors(&wrapper)[3], ("encoder.fc2.bias".to_string(), vec![16], 2592, 16));
}

#[test]
fn a_network_used_as_a_layer_computes_the_composition() {
    let model = Model::<Classifier>::new(8);
    let x = Tensor::<Shape1<64>>::from_slice(&input(64, 3)).unwrap();
    let y = model.predict_one(&x);

    let p = model.params();
    let h1 = dense_reference(&p[..2048], Some(&p[2048..2080]), &x, |z| z.max(0.0));
    let h2 = dense_reference(&p[2080..2592], Some(&p[2592..2608]), &h1, f64::tanh);
    let leaky: Vec<f32> = h2.iter().map(|&v| if v > 0.0 { v } else { 0.1 * v }).collect();
    let expected = dense_reference(&p[2608..2768], None, &leaky, |z| z);
    assert_close(&y, &expected);

    // The encoder alone, over the first slice of the same parameters.
    let encoder = Model::<Encoder>::from_state(Encoder, p[..Encoder::PARAMS].to_vec()).unwrap();
    assert_close(&encoder.predict_one(&x), &h2);
}

#[test]
fn summary_rows_nest_networks() {
    assert_eq!(
        summary_rows::<Classifier>(),
        vec![
            ("encoder".to_string(), "Encoder".to_string(), 0, vec![16], Encoder::PARAMS),
            ("fc1".to_string(), "Dense".to_string(), 1, vec![32], 64 * 32 + 32),
            ("fc2".to_string(), "Dense".to_string(), 1, vec![16], 32 * 16 + 16),
            ("act".to_string(), "leaky_relu".to_string(), 0, vec![16], 0),
            ("head".to_string(), "Dense".to_string(), 0, vec![10], 160),
        ]
    );
    assert_eq!(summary_rows::<Mlp>(), summary_rows::<handwritten::Mlp>());
    let text = Model::<Classifier>::new(1).summary().to_string();
    assert!(text.starts_with("Classifier: [64] -> [10]"), "{text}");
    assert!(text.lines().any(|l| l.starts_with("encoder") && l.contains("Encoder")), "{text}");
    assert!(text.lines().any(|l| l.starts_with("  fc1") && l.contains("Dense")), "{text}");
    assert!(text.contains(&format!("total parameters: {}", Classifier::PARAMS)), "{text}");
}

/// Networks named `A`, `B` and `C`, single names that a generic argument of the
/// macro's shape checks would resolve to first, used as the layers of another.
mod single_letter_names {
    use nn_core::prelude::*;

    network! {
        pub struct A: [6] -> [5] {
            fc: Dense { units: 5, activation: Tanh },
        }

        pub struct B: [5] -> [4] {
            fc: Dense { units: 4 },
        }

        pub struct C: [4] -> [3] {
            fc: Dense { units: 3 },
        }

        pub struct Abc: [6] -> [3] {
            a: A,
            b: B,
            c: C,
        }
    }

    #[test]
    fn networks_named_like_generic_parameters_compose() {
        let model = Model::<Abc>::new(5);
        let p = model.params();
        let (pa, rest) = p.split_at(A::PARAMS);
        let (pb, pc) = rest.split_at(B::PARAMS);
        let a = Model::<A>::from_state(A, pa.to_vec()).unwrap();
        let b = Model::<B>::from_state(B, pb.to_vec()).unwrap();
        let c = Model::<C>::from_state(C, pc.to_vec()).unwrap();

        let x = Tensor::<Shape1<6>>::from_slice(&[0.5, -1.0, 0.25, 2.0, -0.75, 1.5]).unwrap();
        let expected = c.predict_one(&b.predict_one(&a.predict_one(&x)));
        assert_eq!(model.predict_one(&x).as_slice(), expected.as_slice());
    }
}

network! {
    /// Dense 8 -> 8 alone: batch-1 inference returns its kernel's output by value.
    pub struct Dense8: [8] -> [8] {
        fc: Dense { units: 8 },
    }

    /// The same with ReLU and no bias.
    pub struct Dense8Relu: [8] -> [8] {
        fc: Dense { units: 8, activation: Relu, bias: false },
    }

    /// A sigmoid: the zeroed tensor and `Layer::forward`.
    pub struct Dense8Sigmoid: [8] -> [8] {
        fc: Dense { units: 8, activation: Sigmoid },
    }
}

/// `predict_one` of a one-layer network (the output by value from the layer,
/// `Layer::forward_value`) gives the bits of `forward_slices` (the layer's `forward`
/// into the caller's buffer), for inputs with zeros of both signs, and an output that
/// overwrites every float.
#[test]
fn dense_output_by_value_equals_forward_slices() {
    fn check<N: Network<Input = Shape1<8>, Output = Shape1<8>>>(seed: u64) {
        let mut model = Model::<N>::new(seed);
        // Biases of both signs of zero, where there are biases.
        if N::PARAMS == 72 {
            model.params_mut()[64] = -0.0;
            model.params_mut()[65] = 0.0;
        }
        let mut rng = Rng::new(seed);
        for round in 0..3 {
            let mut x: [f32; 8] = core::array::from_fn(|_| rng.uniform_in(-2.0, 2.0));
            if round == 1 {
                x = [-0.0; 8];
            }
            let one = model.predict_one(&Tensor::from(x));
            let mut y = [f32::NAN; 8];
            model.forward_slices(&x, &mut y, &mut []);
            assert_eq!(one.as_slice().iter().map(|v| v.to_bits()).collect::<Vec<_>>(), y.map(f32::to_bits).to_vec());
        }
    }
    check::<Dense8>(1);
    check::<Dense8Relu>(2);
    check::<Dense8Sigmoid>(3);
}
