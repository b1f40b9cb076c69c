//! Inference scratch (`Layer::FORWARD_SCRATCH`): a sequence passes its values through
//! two buffers used in turn instead of keeping one per value, so batch-1 inference
//! needs less stack (`Network::PEAK_ACTIVATION_BYTES`). Checked here: the figure for
//! the digits CNN worked out by hand, that it never exceeds `SCRATCH`, and that a
//! scratch of exactly that size, filled with NaN, gives the same outputs bit for bit
//! as a scratch of `SCRATCH` floats, at batch 1 and 3, for sequences that take either
//! layout (the pipe, and the plain one when the first layer's scratch is the larger).
use nn_core::prelude::*;
use nn_core::Shape;

network! {
    /// The CNN of `05_cnn_digits`.
    pub struct DigitCnn: [1, 8, 8] -> [10] {
        conv1: Conv2d { filters: 16, kernel: 3, padding: Same },
        bn1: BatchNorm2d,
        relu1: Relu,
        conv2: Conv2d { filters: 32, kernel: 3, padding: Same },
        relu2: Relu,
        pool: MaxPool2d { size: 2 } => [32, 4, 4],
        flat: Flatten,
        fc1: Dense { units: 64, activation: Relu },
        drop: Dropout { rate: 0.3 },
        logits: Dense { units: 10 },
    }

    /// A network whose only value is large inside it (100 floats), used first below.
    pub struct Inner: [4] -> [1] {
        wide: Dense { units: 100, activation: Tanh },
        narrow: Dense { units: 1 },
    }

    /// `Inner`'s scratch (100) is larger than anything the rest passes on, so the
    /// plain layout (1 + 100 + ...) beats the pipe (50 + 100).
    pub struct Outer: [4] -> [2] {
        inner: Inner,
        d1: Dense { units: 1 },
        d2: Dense { units: 50, activation: Relu },
        d3: Dense { units: 2 },
    }

    /// Small values kept on the stack at batch 1 (`Layer::VALUE_STACK`), with layers
    /// that are the identity in inference (dropout, reshaping, flattening) and
    /// activation layers between dense layers, Dense 8 -> 8 among them.
    pub struct SmallValues: [24] -> [5] {
        fc1: Dense { units: 40, activation: Relu },
        drop1: Dropout { rate: 0.2 },
        fc2: Dense { units: 16 },
        relu: Relu,
        square: Reshape { shape: [4, 4] },
        flat: Flatten,
        fc3: Dense { units: 8, activation: Relu },
        drop2: Dropout { rate: 0.5 },
        fc4: Dense { units: 8, activation: Relu },
        fc5: Dense { units: 5 },
        soft: Softmax,
    }

    /// Values of more than `VALUE_STACK_MAX` floats together: the outer sequence runs
    /// over its two buffers, its tail keeps its values on the stack.
    pub struct LargeValues: [8] -> [3] {
        wide1: Dense { units: 600, activation: Tanh },
        drop: Dropout { rate: 0.1 },
        wide2: Dense { units: 600, activation: Relu },
        narrow: Dense { units: 16, activation: Relu },
        out: Dense { units: 3 },
    }

    /// Recurrent, attention and encoder layers in one sequence.
    pub struct Sequence: [6, 4] -> [3] {
        gru: Gru { units: 8, return_sequences: true },
        attn: MultiHeadAttention { heads: 2 },
        enc: TransformerEncoder { heads: 2, ff: 16, layers: 2 },
        lstm: Lstm { units: 5, bidirectional: true },
        out: Dense { units: 3 },
    }
}

/// Runs `N` on `batch` samples with a scratch of `len` floats filled with `fill`.
fn outputs<N: Network>(model: &Model<N>, x: &[f32], len: usize, fill: f32) -> Vec<f32> {
    let batch = x.len() / <N::Input as Shape>::LEN;
    let mut y = vec![0.0; batch * <N::Output as Shape>::LEN];
    let mut scratch = vec![fill; len];
    model.forward_slices(x, &mut y, &mut scratch);
    y
}

fn check<N: Network>(seed: u64) {
    assert!(N::FORWARD_SCRATCH <= N::SCRATCH, "{}: {} > {}", N::NAME, N::FORWARD_SCRATCH, N::SCRATCH);
    let model = Model::<N>::new(seed);
    let mut rng = Rng::new(seed + 1);
    for batch in [1, 3] {
        let x: Vec<f32> = (0..batch * <N::Input as Shape>::LEN).map(|_| rng.uniform_in(-1.0, 1.0)).collect();
        let tight = outputs(&model, &x, batch * N::FORWARD_SCRATCH, f32::NAN);
        let roomy = outputs(&model, &x, batch * N::SCRATCH, 0.0);
        assert!(tight.iter().all(|v| v.is_finite()), "{}: batch {batch}: {tight:?}", N::NAME);
        assert_eq!(
            tight.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            roomy.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
        );
        if batch == 1 {
            let one = model.predict_one(&Tensor::from_slice(&x).expect("one sample"));
            assert_eq!(
                one.as_slice().iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                tight.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
            );
        }
    }
}

#[test]
fn the_digits_cnn_needs_two_buffers_and_conv2s_scratch() {
    // The values passed on, in order: conv1 1024, bn1 1024, relu1 1024, conv2 2048,
    // relu2 2048, pool 512, flat 512, fc1 64, drop 64. The first, third, ... go to one
    // buffer (largest: relu2's 2048), the second, fourth, ... to the other (conv2's
    // 2048); then conv2's scratch, the largest of any layer: on x86-64 its shifted
    // input planes (16 channels x 3 kernel columns x 10 padded rows x 8 columns, and 15
    // floats to start them on a cache line), on AArch64 a tile of 16 positions of its
    // column matrix (144 x 16, more than the padded copy's 16 x 10 x 10), elsewhere
    // the column matrix, 144 rows by 64 positions.
    let conv2 = if cfg!(target_arch = "x86_64") {
        16 * 3 * 10 * 8 + 15
    } else if cfg!(target_arch = "aarch64") {
        144 * 16
    } else {
        144 * 64
    };
    assert_eq!(DigitCnn::FORWARD_SCRATCH, 2048 + 2048 + conv2);
    // For training, every value up to conv2's output, then conv2's columns, whose
    // space the later values (3200 floats) reuse.
    assert_eq!(DigitCnn::SCRATCH, 1024 * 3 + 2048 + 9216);
    assert_eq!(DigitCnn::PEAK_ACTIVATION_BYTES, (2048 + 2048 + conv2 + 64 + 10) * 4);
    check::<DigitCnn>(5);
}

#[test]
fn a_large_first_scratch_keeps_the_plain_layout() {
    assert_eq!(Inner::FORWARD_SCRATCH, 100);
    // Plain: inner's output (1), then inner's scratch (100), which d1..d3 reuse.
    assert_eq!(Outer::FORWARD_SCRATCH, 1 + 100);
    check::<Inner>(6);
    check::<Outer>(7);
}

#[test]
fn recurrent_and_attention_layers_fit_the_inference_scratch() {
    check::<Sequence>(8);
}

#[test]
fn small_values_stay_on_the_stack_with_the_same_bits() {
    // Each value a layer writes, in a tensor of its own; none for the layers that are
    // the identity in inference, no scratch.
    let on_stack = cfg!(target_arch = "x86_64");
    if on_stack {
        assert_eq!(SmallValues::VALUE_STACK, 40 + 16 + 16 + 8 + 8 + 5);
        assert_eq!(SmallValues::VALUE_SCRATCH, 0);
        assert_eq!(SmallValues::PEAK_ACTIVATION_BYTES, (93 + 24 + 5) * 4);
        // 600 + 600 + 16 + 3 floats are too many: the two buffers, as for `forward`.
        assert_eq!(LargeValues::VALUE_STACK, 0);
        assert_eq!(LargeValues::VALUE_SCRATCH, LargeValues::FORWARD_SCRATCH);
    } else {
        assert_eq!(SmallValues::VALUE_STACK, 0);
        assert_eq!(SmallValues::VALUE_SCRATCH, SmallValues::FORWARD_SCRATCH);
    }
    check::<SmallValues>(9);
    check::<LargeValues>(10);
    check::<DigitCnn>(11);
    check::<Outer>(12);
}
