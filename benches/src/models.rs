//! The benchmarked networks, the same architectures as `tools/bench/pytorch_bench.py`.
use nn_core::layer::{SummaryRow, TensorInfo, TensorPath};
use nn_core::layers::{Conv2d, Flatten, Gru, Lstm, LstmCell, MaxPool2d, Padding, TransformerEncoderLayer};
use nn_core::prelude::*;

/// A configured built-in layer as a unit type, so that `network!` can use it as a
/// layer (as it uses a network) where the macro has no kind for it: every method
/// delegates to the `const` value.
macro_rules! fixed_layer {
    ($(#[$doc:meta])* $name:ident: $ty:ty = $value:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, Default)]
        pub struct $name;

        impl $name {
            /// The configured layer.
            pub const LAYER: $ty = $value;
        }

        impl Layer for $name {
            type Input = <$ty as Layer>::Input;
            type Output = <$ty as Layer>::Output;
            const PARAMS: usize = <$ty as Layer>::PARAMS;
            const BUFFERS: usize = <$ty as Layer>::BUFFERS;
            const CACHE: usize = <$ty as Layer>::CACHE;
            const SCRATCH: usize = <$ty as Layer>::SCRATCH;
            const KIND: &'static str = <$ty as Layer>::KIND;

            fn init(&self, params: &mut [f32], buffers: &mut [f32], rng: &mut Rng) {
                Self::LAYER.init(params, buffers, rng)
            }
            #[inline]
            fn forward(&self, params: &[f32], buffers: &[f32], x: &[f32], y: &mut [f32], scratch: &mut [f32]) {
                Self::LAYER.forward(params, buffers, x, y, scratch)
            }
            #[inline]
            fn forward_train(
                &self,
                params: &[f32],
                buffers: &mut [f32],
                x: &[f32],
                y: &mut [f32],
                cache: &mut [f32],
                scratch: &mut [f32],
                rng: &mut Rng,
            ) {
                Self::LAYER.forward_train(params, buffers, x, y, cache, scratch, rng)
            }
            #[inline]
            fn backward(
                &self,
                params: &[f32],
                x: &[f32],
                y: &[f32],
                cache: &[f32],
                dy: &mut [f32],
                dx: Option<&mut [f32]>,
                grads: &mut [f32],
                scratch: &mut [f32],
            ) {
                Self::LAYER.backward(params, x, y, cache, dy, dx, grads, scratch)
            }
            fn visit_tensors(
                &self,
                path: Option<&TensorPath<'_>>,
                params_at: usize,
                buffers_at: usize,
                f: &mut dyn FnMut(&TensorInfo<'_>),
            ) {
                Self::LAYER.visit_tensors(path, params_at, buffers_at, f)
            }
            fn visit_summary(&self, name: &str, depth: usize, f: &mut dyn FnMut(&SummaryRow<'_>)) {
                Self::LAYER.visit_summary(name, depth, f)
            }
        }
    };
}

network! {
    /// The MLP of `examples/02_mlp_digits.rs`: 64-128-64-10, ReLU, dropout 0.2.
    pub struct DigitMlp: [64] -> [10] {
        hidden1: Dense { units: 128, activation: Relu },
        drop1: Dropout { rate: 0.2 },
        hidden2: Dense { units: 64, activation: Relu },
        drop2: Dropout { rate: 0.2 },
        logits: Dense { units: 10 },
    }
}

network! {
    /// The large MLP: 784-512-512-10, ReLU.
    pub struct BigMlp: [784] -> [10] {
        fc1: Dense { units: 512, activation: Relu },
        fc2: Dense { units: 512, activation: Relu },
        logits: Dense { units: 10 },
    }
}

fixed_layer! {
    /// 16 filters 3x3 over the 8x8 digit, `Same` padding.
    DigitConv: Conv2d<1, 8, 8, 16, 3, 3, 8, 8> = Conv2d::new([1, 1], Padding::Same, [1, 1])
}
fixed_layer! {
    /// 2x2 max pooling of the 16 feature maps.
    DigitPool: MaxPool2d<16, 8, 8, 4, 4> = MaxPool2d::new([2, 2], [2, 2], [0, 0])
}
fixed_layer! {
    /// The pooled maps as one vector.
    DigitFlatten: Flatten<Shape3<16, 4, 4>, 256> = Flatten::new()
}

network! {
    /// The digits CNN of issue 6: conv 1->16 3x3 same, ReLU, max pool 2, flatten,
    /// dense 64 ReLU, dense 10.
    pub struct DigitCnn: [1, 8, 8] -> [10] {
        conv: self::DigitConv,
        relu: Relu,
        pool: self::DigitPool,
        flatten: self::DigitFlatten,
        hidden: Dense { units: 64, activation: Relu },
        logits: Dense { units: 10 },
    }
}

/// Steps of the LSTM's input sequences.
pub const LSTM_STEPS: usize = 32;
/// Features per step of the recurrent benchmarks.
pub const SEQ_FEATURES: usize = 8;
/// Hidden units of the recurrent benchmarks.
pub const HIDDEN: usize = 64;

fixed_layer! {
    /// An LSTM over 32 steps of 8 features, 64 units, returning the last output.
    SequenceLstm: Lstm<LSTM_STEPS, SEQ_FEATURES, HIDDEN, 1, false> = Lstm::new(LstmCell)
}

network! {
    /// An LSTM classifier of sequences: LSTM (32 steps, hidden 64), last output,
    /// dense 10.
    pub struct LstmNet: [32, 8] -> [10] {
        lstm: self::SequenceLstm,
        logits: Dense { units: 10 },
    }
}

/// The streaming GRU: 8 features in, 64 units (its sequence length only fixes the
/// whole-sequence shape).
pub type StreamGru = Gru<1, SEQ_FEATURES, HIDDEN>;

/// Steps of the encoder's sequences.
pub const ENCODER_STEPS: usize = 32;
/// The encoder's model width.
pub const ENCODER_WIDTH: usize = 64;

fixed_layer! {
    /// A post-norm encoder layer: width 64, 4 heads, feed-forward 256, ReLU, no
    /// dropout (as the PyTorch layer with `dropout=0`).
    Encoder: TransformerEncoderLayer<32, 64, 4, 256> = TransformerEncoderLayer::new(false, Activation::Relu, 0.0)
}

network! {
    /// One Transformer encoder layer over 32 steps of width 64.
    pub struct EncoderNet: [32, 64] -> [32, 64] {
        encoder: self::Encoder,
    }
}

/// The digits MLP as plain fixed-size arrays and nested loops: the hand-written
/// reference for batch-1 inference (`weight[out][in]`, PyTorch's layout).
pub struct HandMlp {
    w1: Box<[[f32; 64]; 128]>,
    b1: [f32; 128],
    w2: Box<[[f32; 128]; 64]>,
    b2: [f32; 64],
    w3: Box<[[f32; 64]; 10]>,
    b3: [f32; 10],
}

/// `y = relu?(W x + b)` with compile-time sizes.
#[inline(always)]
fn hand_dense<const I: usize, const O: usize>(w: &[[f32; I]; O], b: &[f32; O], x: &[f32; I], relu: bool) -> [f32; O] {
    let mut y = [0.0; O];
    for o in 0..O {
        let mut acc = b[o];
        for i in 0..I {
            acc += w[o][i] * x[i];
        }
        y[o] = if relu && acc < 0.0 { 0.0 } else { acc };
    }
    y
}

impl HandMlp {
    /// The same weights as `model`.
    pub fn from_model(model: &Model<DigitMlp>) -> Self {
        let mut p = model.params();
        let mut take = |n: usize| {
            let (head, rest) = p.split_at(n);
            p = rest;
            head
        };
        fn rows<const I: usize, const O: usize>(v: &[f32]) -> Box<[[f32; I]; O]> {
            let mut w = Box::new([[0.0; I]; O]);
            for (row, src) in w.iter_mut().zip(v.chunks_exact(I)) {
                row.copy_from_slice(src);
            }
            w
        }
        let w1 = rows::<64, 128>(take(128 * 64));
        let b1 = take(128).try_into().unwrap();
        let w2 = rows::<128, 64>(take(64 * 128));
        let b2 = take(64).try_into().unwrap();
        let w3 = rows::<64, 10>(take(10 * 64));
        let b3 = take(10).try_into().unwrap();
        HandMlp { w1, b1, w2, b2, w3, b3 }
    }

    /// The logits of one sample.
    #[inline(never)]
    pub fn forward(&self, x: &[f32; 64]) -> [f32; 10] {
        let h1 = hand_dense(&self.w1, &self.b1, x, true);
        let h2 = hand_dense(&self.w2, &self.b2, &h1, true);
        hand_dense(&self.w3, &self.b3, &h2, false)
    }
}
