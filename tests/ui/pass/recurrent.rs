//! The recurrent kinds in `network!`: parameter names, shapes, and a training step.
use nn_core::prelude::*;
use nn_core::stream::Stream;

network! {
    /// Tags every token: embeddings, a two-layer bidirectional LSTM (directions summed),
    /// a per-step softmax.
    pub struct Tagger: [12] -> [12, 5] {
        embed: Embedding { vocab: 30, dim: 8 },
        lstm: Lstm { units: 16, layers: 2, bidirectional: true, merge: Sum, return_sequences: true } => [12, 16],
        tags: SequenceDense { units: 5, activation: Softmax },
    }

    /// Classifies a sequence from the GRU's last output, directions concatenated.
    pub struct Classifier: [20, 3] -> [2] {
        gru: Gru { units: 6, bidirectional: true, truncate: 5 } => [12],
        out: Dense { units: 2 },
    }

    /// A ReLU Elman network over a sequence-to-sequence encoder used as a layer.
    pub struct Stack: [20, 3] -> [4] {
        tagger: Seq2Seq,
        rnn: SimpleRnn { units: 4, activation: Relu },
    }

    pub struct Seq2Seq: [20, 3] -> [20, 7] {
        gru: Gru { units: 7, return_sequences: true },
        drop: Dropout { rate: 0.1 },
        per_step: SequenceDense { units: 7, activation: Tanh, bias: false },
    }
}

fn main() {
    let model = Model::<Tagger>::new(1);
    let mut names = Vec::new();
    model.visit_tensors(&mut |t| names.push((t.path.to_string(), t.shape.to_vec())));
    assert_eq!(names[0], ("embed.weight".to_string(), vec![30, 8]));
    assert_eq!(names[1], ("lstm.weight_ih_l0".to_string(), vec![64, 8]));
    assert_eq!(names[5], ("lstm.weight_ih_l0_reverse".to_string(), vec![64, 8]));
    assert_eq!(names[9], ("lstm.weight_ih_l1".to_string(), vec![64, 32]));
    assert_eq!(names[names.len() - 2], ("tags.weight".to_string(), vec![5, 16]));
    let tokens: Vec<f32> = (0..12).map(|i| (i * 7 % 30) as f32).collect();
    let y = model.predict(&tokens).unwrap();
    assert_eq!(y.len(), 12 * 5);
    for row in y.chunks(5) {
        assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5);
    }

    // One training step of the classifier moves its loss.
    let mut model = Model::<Classifier>::new(2);
    let x: Vec<f32> = (0..4 * 60).map(|i| ((i * 37 % 11) as f32 - 5.0) / 5.0).collect();
    let labels = [0.0, 1.0, 1.0, 0.0];
    let mut ws = Workspace::<Classifier>::new();
    let mut opt = OptimizerState::new(Adam::new(0.01));
    let loss = SparseCategoricalCrossEntropy::from_logits();
    let mut rng = Rng::new(0);
    let mut first = None;
    let mut last = 0.0;
    for _ in 0..20 {
        ws.zero_grads();
        model.forward_train(&mut ws, &x, &mut rng);
        last = ws.loss(&loss, &labels);
        first.get_or_insert(last);
        model.backward(&mut ws, &x, None);
        opt.step(model.params_mut(), ws.grads());
    }
    assert!(last < first.unwrap(), "{first:?} -> {last}");

    let stack = Model::<Stack>::new(3);
    assert_eq!(stack.predict(&[0.5; 60]).unwrap().len(), 4);
    assert_eq!(Stack::PARAMS, Seq2Seq::PARAMS + 4 * (7 + 4 + 2));

    // A network whose layers all stream runs step by step, as its whole-sequence forward.
    let seq2seq = Model::<Seq2Seq>::new(4);
    let x: Vec<f32> = (0..60).map(|i| (i as f32 * 0.37).sin()).collect();
    let whole = seq2seq.predict(&x).unwrap();
    let mut stream = seq2seq.stream();
    for t in 0..20 {
        let y = stream.step(&[x[3 * t], x[3 * t + 1], x[3 * t + 2]].into());
        assert_eq!(&y[..], &whole[7 * t..7 * t + 7]);
    }
    stream.reset();

    // A single recurrent layer streams too.
    type Layer = nn_core::layers::Gru<20, 3, 7>;
    let gru = Layer::new(nn_core::layers::GruCell);
    let params = vec![0.1; <Layer as nn_core::Layer>::PARAMS];
    let mut stream = Stream::new(gru, &params, &[]);
    assert_eq!(stream.step(&[1.0, 2.0, 3.0].into()).len(), 7);
}
