//! The convolution family through `network!`: every kind and every form of its
//! options, shapes checked by `=> [..]` assertions (compile time), the expansion
//! against the same layers composed by hand, tensor names as PyTorch's `state_dict`,
//! batch norm's buffers through `Model`, and convolutions after a network used as a
//! layer (whose shapes the macro sees only as types).
use nn_core::__private::{Chain, Named};
use nn_core::layers::Act;
use nn_core::layers::{Conv2d, Dense, Flatten, MaxPool2d, Padding};
use nn_core::prelude::*;

network! {
    /// The digits CNN of the design document.
    pub struct DigitCnn: [1, 8, 8] -> [10] {
        conv1: Conv2d { filters: 16, kernel: 3, padding: Same } => [16, 8, 8],
        relu1: Relu,
        pool1: MaxPool2d { size: 2 } => [16, 4, 4],
        flat: Flatten => [256],
        fc1: Dense { units: 64, activation: Relu },
        drop: Dropout { rate: 0.3 },
        logits: Dense { units: 10 },
    }

    /// Every 2-D kind, with every form of the options.
    pub struct Images: [3, 9, 8] -> [6] {
        same: Conv2d { filters: 4, kernel: [3, 2], padding: Same, dilation: [1, 2] } => [4, 9, 8],
        strided: Conv2d { filters: 5, kernel: 3, stride: [2, 1], padding: [1, 0], bias: false } => [5, 5, 6],
        norm: BatchNorm2d { momentum: 0.2, eps: 0.001 },
        valid: Conv2d { filters: 4, kernel: 2, padding: Valid, stride: 1, dilation: 1 } => [4, 4, 5],
        up: ConvTranspose2d { filters: 3, kernel: 3, stride: 2, padding: 1, output_padding: 1 } => [3, 8, 10],
        down: ConvTranspose2d { filters: 2, kernel: [2, 1], padding: [0, 0], dilation: 2, bias: false } => [2, 10, 10],
        max: MaxPool2d { size: 3, stride: 2, padding: 1 } => [2, 5, 5],
        avg: AvgPool2d { size: [2, 3], stride: [1, 2], padding: [1, 1] } => [2, 6, 3],
        bigger: Upsample { scale: [2, 3] } => [2, 12, 9],
        norm2: BatchNorm2d,
        global: GlobalAvgPool2d => [2],
        fc: Dense { units: 6 },
    }

    /// Every 1-D kind, reshapes and the global max.
    pub struct Signals: [24] -> [4] {
        rows: Reshape { shape: [2, 12] },
        conv: Conv1d { filters: 3, kernel: 3, stride: 2, padding: 1, dilation: 2 } => [3, 5],
        same: Conv1d { filters: 3, kernel: 4, padding: Same, bias: false } => [3, 5],
        norm: BatchNorm1d,
        up: Upsample1d { scale: 2 } => [3, 10],
        max: MaxPool1d { size: 2 } => [3, 5],
        avg: AvgPool1d { size: 3, stride: 1, padding: 1 } => [3, 5],
        image: Reshape { shape: [3, 5, 1] },
        flat: Flatten => [15],
        fc: Dense { units: 8 },
        vector_norm: BatchNorm1d { momentum: 0.5 },
        back: Reshape { shape: [2, 4] },
        global: GlobalMaxPool1d => [2],
        global_avg: Reshape { shape: [1, 2] },
        mean: GlobalAvgPool1d => [1],
        fc2: Dense { units: 4 },
    }

    /// A feature extractor, used as a layer below.
    pub struct Features: [1, 12, 12] -> [4, 6, 6] {
        conv: Conv2d { filters: 4, kernel: 3, padding: 1 },
        pool: MaxPool2d { size: 2 },
    }

    /// Convolutions after a network used as a layer: the macro sees its output only as
    /// a type and writes the sizes as `const` expressions.
    pub struct Head: [1, 12, 12] -> [3] {
        features: Features,
        conv: Conv2d { filters: 2, kernel: 3, stride: 2 } => [2, 2, 2],
        up: ConvTranspose2d { filters: 2, kernel: 2, stride: 2 },
        pool: AvgPool2d { size: 2 },
        upsample: Upsample { scale: 3 },
        norm: BatchNorm2d,
        global: GlobalMaxPool2d,
        fc: Dense { units: 3 },
    }

    /// `Flatten` of a type-only shape.
    pub struct FlatHead: [1, 12, 12] -> [144] {
        features: Features,
        flat: Flatten,
    }
}

/// `DigitCnn` composed by hand: the reference for its expansion.
type HandCnn = Chain<
    Named<Conv2d<1, 8, 8, 16, 3, 3, 8, 8>>,
    Chain<
        Named<Relu<Shape3<16, 8, 8>>>,
        Chain<
            Named<MaxPool2d<16, 8, 8, 4, 4>>,
            Chain<
                Named<Flatten<Shape3<16, 4, 4>, 256>>,
                Chain<Named<Dense<256, 64>>, Chain<Named<Dropout<Shape1<64>>>, Named<Dense<64, 10>>>>,
            >,
        >,
    >,
>;

fn hand_cnn() -> HandCnn {
    Chain {
        first: Named { name: "conv1", layer: Conv2d::new([1, 1], Padding::Same, [1, 1]) },
        rest: Chain {
            first: Named { name: "relu1", layer: Act::new(Activation::Relu) },
            rest: Chain {
                first: Named { name: "pool1", layer: MaxPool2d::new([2, 2], [2, 2], [0, 0]) },
                rest: Chain {
                    first: Named { name: "flat", layer: Flatten::new() },
                    rest: Chain {
                        first: Named { name: "fc1", layer: Dense::new(Activation::Relu) },
                        rest: Chain {
                            first: Named { name: "drop", layer: Dropout::new(0.3) },
                            rest: Named { name: "logits", layer: Dense::new(Activation::Identity) },
                        },
                    },
                },
            },
        },
    }
}

fn names<L: Layer, P: AsRef<[f32]>>(model: &Model<L, P>) -> Vec<(String, Vec<usize>, bool)> {
    let mut out = Vec::new();
    model.visit_tensors(&mut |t| out.push((t.path.to_string(), t.shape.to_vec(), t.trainable)));
    out
}

/// The buffers of a model: name, shape and offset in the buffer array.
fn buffers<L: Layer, P: AsRef<[f32]>>(model: &Model<L, P>) -> Vec<(String, Vec<usize>, usize)> {
    let mut found = Vec::new();
    model.visit_tensors(&mut |t| {
        if !t.trainable {
            found.push((t.path.to_string(), t.shape.to_vec(), t.offset));
        }
    });
    found
}

#[test]
fn the_digit_cnn_expands_to_the_layers_composed_by_hand() {
    assert_eq!(DigitCnn::PARAMS, 16 * 9 + 16 + 256 * 64 + 64 + 64 * 10 + 10);
    assert_eq!(<HandCnn as Layer>::PARAMS, DigitCnn::PARAMS);
    assert_eq!(DigitCnn::SCRATCH, <HandCnn as Layer>::SCRATCH);
    assert_eq!(DigitCnn::CACHE, <HandCnn as Layer>::CACHE);
    let model = Model::<DigitCnn>::new(5);
    let hand = Model::from_state(hand_cnn(), model.state().to_vec()).unwrap();
    assert_eq!(names(&model), names(&hand));
    assert_eq!(names(&model)[0], ("conv1.weight".to_string(), vec![16, 1, 3, 3], true));

    let x: Vec<f32> = (0..3 * 64).map(|i| ((i * 37 % 17) as f32 - 8.0) / 8.0).collect();
    assert_eq!(model.predict(&x), hand.predict(&x));
    // Batch-1 inference on the stack agrees with the batch path (up to rounding: a
    // single row takes the GEMV kernel, a batch the GEMM one).
    let one = model.predict_one(&Tensor::from_slice(&x[64..128]).unwrap());
    for (a, b) in one.iter().zip(&model.predict(&x).unwrap()[10..20]) {
        assert!((a - b).abs() <= 1e-5 * (1.0 + b.abs()), "batch 1: {a}, batch 3: {b}");
    }
    let summary = model.summary().to_string();
    for row in ["conv1", "Conv2d", "[16, 8, 8]", "MaxPool2d", "Flatten", "[256]"] {
        assert!(summary.contains(row), "{row} not in\n{summary}");
    }
}

#[test]
fn every_kind_trains_through_model() {
    fn step<N: Network + Default>(seed: u64) -> (Model<N>, Vec<f32>) {
        let mut model = Model::<N>::new(seed);
        let batch = 3;
        let x: Vec<f32> =
            (0..batch * <N::Input as Shape>::LEN).map(|i| ((i * 7919 % 23) as f32 - 11.0) / 7.0).collect();
        let targets = vec![0.5; batch * <N::Output as Shape>::LEN];
        let mut ws = Workspace::<N>::new();
        let before = model.params().to_vec();
        let mut opt = OptimizerState::new(Sgd::new(0.01));
        for _ in 0..2 {
            ws.zero_grads();
            model.forward_train(&mut ws, &x, &mut Rng::new(1));
            let loss = ws.loss(&MeanSquaredError, &targets);
            assert!(loss.is_finite());
            model.backward(&mut ws, &x, None);
            assert!(ws.grads().iter().all(|g| g.is_finite()));
            opt.step(model.params_mut(), ws.grads());
        }
        assert_ne!(model.params(), &before[..], "{} did not learn", N::NAME);
        let y = model.predict(&x).unwrap();
        assert!(y.iter().all(|v| v.is_finite()));
        (model, x)
    }
    let (images, _) = step::<Images>(1);
    let (signals, _) = step::<Signals>(2);
    let (head, _) = step::<Head>(3);
    let (flat, x) = step::<FlatHead>(4);
    let _ = step::<Separable>(5);
    assert_eq!(flat.predict(&x).unwrap().len(), 3 * 144);

    // Batch norm's buffers: after two training steps of batches, two batches tracked.
    let image_buffers = buffers(&images);
    assert_eq!(
        image_buffers.iter().map(|(n, s, _)| (n.as_str(), s.clone())).collect::<Vec<_>>(),
        [
            ("norm.running_mean", vec![5]),
            ("norm.running_var", vec![5]),
            ("norm.num_batches_tracked", vec![]),
            ("norm2.running_mean", vec![2]),
            ("norm2.running_var", vec![2]),
            ("norm2.num_batches_tracked", vec![]),
        ]
    );
    let tracked = |model: &[f32], offset: usize| model[offset];
    assert_eq!(tracked(images.buffers(), image_buffers[2].2), 2.0);
    assert_eq!(Images::BUFFERS, 2 * 5 + 1 + 2 * 2 + 1);
    let signal_buffers = buffers(&signals);
    assert_eq!(signal_buffers[0].0, "norm.running_mean");
    assert_eq!(signal_buffers[3].0, "vector_norm.running_mean");
    assert_eq!(signal_buffers[3].1, vec![8]);
    let head_buffers = buffers(&head);
    assert_eq!(head_buffers[0].0, "norm.running_mean");
    assert!(names(&head).iter().any(|(n, s, _)| n == "features.conv.weight" && s == &[4, 1, 3, 3]));
    assert!(names(&head).iter().any(|(n, s, _)| n == "up.weight" && s == &[2, 2, 2, 2]));
}

#[test]
fn options_reach_the_layers() {
    // `Head`'s shapes after `features` are const expressions: check what they became.
    assert_eq!(<Head as Layer>::Output::DIMS, &[3]);
    assert_eq!(Head::PARAMS, Features::PARAMS + 2 * 4 * 9 + 2 + 2 * 2 * 4 + 2 + 2 * 2 + 2 * 3 + 3);
    let model = Model::<Images>::new(0);
    let summary = model.summary().to_string();
    for row in ["ConvTranspose2d", "[3, 8, 10]", "AvgPool2d", "[2, 6, 3]", "Upsample", "GlobalAvgPool2d", "BatchNorm2d"]
    {
        assert!(summary.contains(row), "{row} not in\n{summary}");
    }
}

network! {
    /// A depthwise-separable block (depthwise with a depth multiplier of 2, then
    /// pointwise), a grouped 1-D convolution, and a grouped convolution after a
    /// network used as a layer (whose channels the macro sees only as a type).
    pub struct Separable: [4, 9, 8] -> [5] {
        depthwise: Conv2d { filters: 8, kernel: 3, padding: 1, groups: 4 } => [8, 9, 8],
        pointwise: Conv2d { filters: 6, kernel: 1 } => [6, 9, 8],
        grouped: Conv2d { filters: 6, kernel: [3, 2], stride: 2, groups: 3, bias: false } => [6, 4, 4],
        rows: Reshape { shape: [6, 16] },
        signal: Conv1d { filters: 4, kernel: 3, stride: 2, padding: 1, groups: 2 } => [4, 8],
        depthwise1d: Conv1d { filters: 4, kernel: 5, padding: Same, groups: 4 } => [4, 8],
        flat: Flatten,
        fc: Dense { units: 5 },
    }

    pub struct AfterFeatures: [1, 12, 12] -> [4, 6, 6] {
        features: Features,
        depthwise: Conv2d { filters: 4, kernel: 3, padding: 1, groups: 4 },
    }
}

#[test]
fn grouped_convolutions_through_network() {
    let model = Model::<Separable>::new(6);
    let shapes: Vec<_> = names(&model).into_iter().filter(|(n, _, _)| n.ends_with("weight")).collect();
    let weight = |name: &str, shape: &[usize]| (format!("{name}.weight"), shape.to_vec(), true);
    assert_eq!(
        shapes,
        [
            weight("depthwise", &[8, 1, 3, 3]),
            weight("pointwise", &[6, 8, 1, 1]),
            weight("grouped", &[6, 2, 3, 2]),
            weight("signal", &[4, 3, 3]),
            weight("depthwise1d", &[4, 1, 5]),
            weight("fc", &[5, 32]),
        ]
    );
    assert_eq!(Separable::PARAMS, (8 * 9 + 8) + (6 * 8 + 6) + 6 * 2 * 6 + (4 * 3 * 3 + 4) + (4 * 5 + 4) + (5 * 32 + 5));
    // The expansion is the layer with its groups.
    let depthwise = Conv2d::<4, 9, 8, 8, 3, 3, 9, 8, true, 4>::new([1, 1], Padding::Explicit([1, 1]), [1, 1]);
    assert_eq!(depthwise.groups(), 4);
    let x: Vec<f32> = (0..2 * 4 * 72).map(|i| ((i * 37 % 17) as f32 - 8.0) / 8.0).collect();
    let batch = model.predict(&x).unwrap();
    let one = model.predict_one(&Tensor::from_slice(&x[288..]).unwrap());
    for (a, b) in one.iter().zip(&batch[5..]) {
        assert!((a - b).abs() <= 1e-5 * (1.0 + b.abs()), "batch 1: {a}, batch 2: {b}");
    }

    let mut model = Model::<AfterFeatures>::new(7);
    assert_eq!(names(&model)[2], ("depthwise.weight".to_string(), vec![4, 1, 3, 3], true));
    let x: Vec<f32> = (0..3 * 144).map(|i| ((i * 7919 % 23) as f32 - 11.0) / 7.0).collect();
    let mut ws = Workspace::<AfterFeatures>::new();
    let before = model.params().to_vec();
    model.forward_train(&mut ws, &x, &mut Rng::new(1));
    let _ = ws.loss(&MeanSquaredError, &vec![0.5; 3 * 144]);
    model.backward(&mut ws, &x, None);
    OptimizerState::new(Sgd::new(0.01)).step(model.params_mut(), ws.grads());
    assert_ne!(model.params(), &before[..]);
}
