//! Recurrent layers from given initial states: network inputs (`[layers x directions,
//! units]` per sample, or `[units]` for one layer in one direction), values computed by
//! other layers, sizes from `const` items; the gradient of a state input.
use nn_core::layers::{state_from_pytorch, state_to_pytorch};
use nn_core::prelude::*;

const UNITS: usize = 4;

network! {
    /// PyTorch's `lstm(x, (h0, c0))` then `gru(seq, g0)`.
    pub struct States: ([6, 3], [2, 4], [2, 4], [4]) -> [6, 4] graph {
        input x, h0, c0, g0;
        seq = lstm(x, h0, c0): Lstm { units: 4, bidirectional: true, merge: Sum, return_sequences: true };
        y = gru(seq, g0): Gru { units: UNITS, return_sequences: true };
        output y;
    }
}

network! {
    /// The decoder starts from the encoder's last output.
    pub struct Seq2Seq: ([6, 3], [5, 2]) -> [5, 2] graph {
        input src, tgt;
        h = enc(src): SimpleRnn { units: UNITS };
        d = dec(tgt, h): SimpleRnn { units: UNITS, return_sequences: true };
        y = head(d): SequenceDense { units: 2 };
        output y;
    }
}

fn main() {
    let model = Model::<States>::new(1);
    let x = [0.5; 2 * 18];
    // PyTorch's h0 for a batch of 2: [2 directions, 2 samples, 4 units].
    let torch_h0: Vec<f32> = (0..16).map(|v| v as f32 / 16.0).collect();
    let mut h0 = [0.0; 16];
    assert_eq!(state_from_pytorch(2, 4, &torch_h0, &mut h0), Ok(2));
    let c0 = [0.1; 16];
    let g0 = [0.0; 8];
    let (y,) = model.predict_multi((&x, &h0, &c0, &g0)).unwrap();
    assert_eq!(y.len(), 2 * 24);
    let mut back = [0.0; 16];
    assert_eq!(state_to_pytorch(2, 4, &h0, &mut back), Ok(2));
    assert_eq!(back.to_vec(), torch_h0);

    let mut model = Model::<Seq2Seq>::new(2);
    let (src, tgt, target) = ([0.3; 18], [0.2; 10], [0.1; 10]);
    let data = Dataset::multi::<Seq2Seq>((&src, &tgt), (&target,)).unwrap();
    let mut fit = Fit::new(Sgd::new(0.1), MeanSquaredError).epochs(3).batch_size(1);
    let history = fit.run(&mut model, &data, None).unwrap();
    assert_eq!(history.series("loss").len(), 3);
}
