use nn_core::prelude::*;

const HIDDEN: usize = 12;
const VOCAB: usize = 20;
const DIM: usize = 4;
const FILTERS: usize = 4;
const KERNEL: usize = 3;
const LAYERS: usize = 2;
const TRUNCATE: usize = 3;

mod config {
    pub const OUT: usize = 3;
}

network! {
    /// Sizes from `const` items, and the same network with literals.
    pub struct ConstMlp: [8] -> [3] {
        fc1: Dense { units: HIDDEN, activation: Relu },
        fc2: Dense { units: config::OUT },
    }
    pub struct LiteralMlp: [8] -> [3] {
        fc1: Dense { units: 12, activation: Relu },
        fc2: Dense { units: 3 },
    }
    pub struct ConstRnn: [6] -> [3] {
        embed: Embedding { vocab: VOCAB, dim: DIM },
        steps: SequenceDense { units: HIDDEN },
        gru: Gru { units: HIDDEN, bidirectional: true, return_sequences: true, layers: LAYERS },
        lstm: Lstm { units: config::OUT, truncate: TRUNCATE },
    }
    pub struct LiteralRnn: [6] -> [3] {
        embed: Embedding { vocab: 20, dim: 4 },
        steps: SequenceDense { units: 12 },
        gru: Gru { units: 12, bidirectional: true, return_sequences: true, layers: 2 },
        lstm: Lstm { units: 3, truncate: 3 },
    }
    pub struct ConstConv: [2, 9, 9] -> [3] {
        conv: Conv2d { filters: FILTERS, kernel: KERNEL, stride: 2 },
        same: Conv2d { filters: FILTERS, kernel: KERNEL, padding: Same },
        grouped: Conv2d { filters: 2, kernel: KERNEL, padding: 1, groups: 2 },
        up: ConvTranspose2d { filters: FILTERS, kernel: KERNEL, stride: 2 },
        pool: MaxPool2d { size: 3 },
        flat: Flatten,
        head: Dense { units: config::OUT },
    }
    pub struct LiteralConv: [2, 9, 9] -> [3] {
        conv: Conv2d { filters: 4, kernel: 3, stride: 2 },
        same: Conv2d { filters: 4, kernel: 3, padding: Same },
        grouped: Conv2d { filters: 2, kernel: 3, padding: 1, groups: 2 },
        up: ConvTranspose2d { filters: 4, kernel: 3, stride: 2 },
        pool: MaxPool2d { size: 3 },
        flat: Flatten,
        head: Dense { units: 3 },
    }
    pub struct ConstSignal: [2, 10] -> [3] {
        conv: Conv1d { filters: FILTERS, kernel: KERNEL, dilation: 2 },
        flat: Flatten,
        head: Dense { units: 3 },
    }
    pub struct LiteralSignal: [2, 10] -> [3] {
        conv: Conv1d { filters: 4, kernel: 3, dilation: 2 },
        flat: Flatten,
        head: Dense { units: 3 },
    }
}

/// The outputs of two networks over the same seeded parameters.
fn same_outputs<A, B>(x: &[f32])
where
    A: Network<Output = Shape1<3>> + Default,
    B: Network<Input = A::Input, Output = Shape1<3>> + Default,
{
    let a = Model::<A>::new(7);
    let b = Model::<B>::from_state(B::default(), a.state().to_vec()).unwrap();
    let x = Tensor::<A::Input>::from_slice(x).unwrap();
    assert_eq!(a.predict_one(&x).to_vec(), b.predict_one(&x).to_vec());
}

fn main() {
    assert_eq!(ConstMlp::PARAMS, LiteralMlp::PARAMS);
    assert_eq!(ConstMlp::PARAMS, 8 * 12 + 12 + 12 * 3 + 3);
    assert_eq!(ConstRnn::PARAMS, LiteralRnn::PARAMS);
    assert_eq!(ConstRnn::BUFFERS, LiteralRnn::BUFFERS);
    same_outputs::<ConstMlp, LiteralMlp>(&[0.5, -1.0, 2.0, 0.0, 1.5, -0.5, 0.25, 1.0]);
    same_outputs::<ConstRnn, LiteralRnn>(&[1.0, 4.0, 19.0, 0.0, 7.0, 3.0]);
    assert_eq!(ConstConv::PARAMS, LiteralConv::PARAMS);
    assert_eq!(ConstSignal::PARAMS, LiteralSignal::PARAMS);
    assert_eq!(ConstSignal::PARAMS, 2 * 3 * 4 + 4 + 4 * 6 * 3 + 3);
    let image: Vec<f32> = (0..2 * 9 * 9).map(|i| ((i * 7) % 11) as f32 / 5.0 - 1.0).collect();
    same_outputs::<ConstConv, LiteralConv>(&image);
    same_outputs::<ConstSignal, LiteralSignal>(&image[..20]);
}
