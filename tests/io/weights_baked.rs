//! Weights baked in at compile time: `include_weights!` against a file PyTorch wrote
//! (`tools/fixtures/baked_weights.py`), a graph network's from the state of a golden
//! fixture (`tools/fixtures/graph_state.py`), and every layer family's compile-time
//! tensor description against its run-time `visit_tensors`.
use crate::fixtures;

use fixtures::Fixture;
use nn_core::prelude::*;
use nn_core::Layer;

network! {
    /// `Linear(4, 8) -> ReLU -> BatchNorm1d(8) -> Linear(8, 3)`, as the fixture.
    pub struct Tiny: [4] -> [3] {
        fc1: Dense { units: 8 },
        relu: Relu,
        bn: BatchNorm1d,
        out: Dense { units: 3 },
    }

    /// Dense, convolutions, pooling and batch norm.
    pub struct Vision: [1, 8, 8] -> [4] {
        conv: Conv2d { filters: 3, kernel: 3, padding: Same },
        bn: BatchNorm2d,
        pool: MaxPool2d { size: 2 },
        up: ConvTranspose2d { filters: 2, kernel: 2, stride: 2, bias: false },
        flat: Flatten,
        fc: Dense { units: 4, bias: false },
    }

    /// Embeddings, stacked bidirectional recurrent layers, per-step dense.
    pub struct Tagger: [6] -> [6, 3] {
        embed: Embedding { vocab: 10, dim: 4 },
        lstm: Lstm { units: 5, layers: 2, bidirectional: true, return_sequences: true },
        gru: Gru { units: 3, return_sequences: true },
        rnn: SimpleRnn { units: 2, return_sequences: true },
        tags: SequenceDense { units: 3 },
    }

    /// Attention, positions, norms and an encoder stack.
    pub struct Encoder: [5, 8] -> [5, 8] {
        pos: LearnedPositional,
        attn: MultiHeadAttention { heads: 2 },
        norm: LayerNorm,
        enc: TransformerEncoder { heads: 2, ff: 16, layers: 2 },
        ff: FeedForward { units: 12 },
        conv: Reshape { shape: [8, 5] },
        conv1: Conv1d { filters: 5, kernel: 3 },
        flat: Reshape { shape: [5, 3] },
        back: SequenceDense { units: 8 },
    }

    /// A network used as a layer.
    pub struct Outer: [1, 8, 8] -> [2] {
        vision: Vision,
        head: Dense { units: 2 },
    }
}

network! {
    /// `sigmoid(relu(enc(x)) enc.weight + dec.bias)`, as `tests/golden/graph.rs`'s.
    pub struct TiedAutoencoder: [6] -> [6] graph {
        input x;
        code = enc(x): Dense { units: 3, activation: Relu };
        out = dec(code): Dense { tied: enc, activation: Sigmoid };
        output out;
    }

    /// A graph with merges, a shared layer, batch norm (buffers) and a nested network.
    pub struct Branches: [1, 8, 8] -> [6] graph {
        input x;
        v = vision(x): Vision;
        a = fa(v): Dense { units: 6, activation: Tanh };
        b = shared(a): Dense { units: 6 };
        c = shared(b);
        d = subtract(a, c);
        n = bn(d): BatchNorm1d;
        output n;
    }
}

static TINY: [f32; Tiny::STATE_LEN] = nn_core::include_weights!(Tiny, "tests/fixtures/baked/tiny.safetensors");
static TINY_MODEL: Model<Tiny, &[f32]> = Model::from_static(Tiny, &TINY);

/// Every tensor of `L`'s compile-time description equals the one `visit_tensors`
/// reports at the same position: name, shape, array and offset.
fn same_description<L: Layer + Default>() {
    let model = Model::<L>::zeros();
    let mut visited = Vec::new();
    model.visit_tensors(&mut |t| visited.push((t.path.to_string(), t.shape.to_vec(), t.offset, t.trainable)));
    assert!(!visited.is_empty());
    let tree = L::TENSORS;
    assert_eq!(tree.unknown(), None);
    assert_eq!(tree.count(), visited.len(), "{}", L::KIND);
    let (mut params_at, mut buffers_at) = (0, 0);
    for (k, (name, shape, offset, trainable)) in visited.iter().enumerate() {
        let entry = tree.tensor(k).unwrap();
        assert_eq!(entry.name.as_str(), name, "{} tensor {k}", L::KIND);
        assert_eq!(&entry.shape[..entry.rank], &shape[..], "{name}");
        assert_eq!(entry.trainable, *trainable, "{name}");
        let at = if *trainable { &mut params_at } else { &mut buffers_at };
        assert_eq!(*at, *offset, "{name}");
        *at += entry.len();
    }
    assert_eq!((params_at, buffers_at), (L::PARAMS, L::BUFFERS));
}

static AUTOENCODER: [f32; TiedAutoencoder::STATE_LEN] =
    nn_core::include_weights!(TiedAutoencoder, "tests/fixtures/baked/graph_tied_autoencoder_state.safetensors");

#[test]
fn a_graph_network_bakes_its_weights_and_matches_pytorch() {
    let file = Fixture::load("baked/graph_tied_autoencoder_state");
    let expected: Vec<f32> =
        ["enc.weight", "enc.bias", "dec.bias"].iter().flat_map(|n| file.values(n).to_vec()).collect();
    assert!(AUTOENCODER.iter().zip(&expected).all(|(a, b)| a.to_bits() == b.to_bits()));
    assert_eq!(AUTOENCODER.len(), expected.len());
    let model: Model<TiedAutoencoder, &[f32]> = Model::from_static(TiedAutoencoder, &AUTOENCODER);
    let golden = Fixture::load("graph_tied_autoencoder");
    for (x, y) in golden.values("input").chunks(6).zip(golden.values("output").chunks(6)) {
        let out = model.predict_one(&<[f32; 6]>::try_from(x).unwrap().into());
        for (a, b) in out.iter().zip(y) {
            assert!((a - b).abs() <= 1e-5 * (1.0 + b.abs()), "{out:?} vs {y:?}");
        }
    }
}

#[test]
fn compile_time_description_equals_visit_tensors() {
    same_description::<TiedAutoencoder>();
    same_description::<Branches>();
    assert!(Branches::TENSORS.tensor(0).unwrap().name.eq_str("vision.conv.weight"));
    same_description::<Tiny>();
    same_description::<Vision>();
    same_description::<Tagger>();
    same_description::<Encoder>();
    same_description::<Outer>();
    assert!(Outer::TENSORS.tensor(0).unwrap().name.eq_str("vision.conv.weight"));
    assert!(Encoder::TENSORS.tensor(10).unwrap().name.eq_str("enc.layers.0.self_attn.out_proj.bias"));
    assert!(Tagger::TENSORS.tensor(8).unwrap().name.eq_str("lstm.bias_hh_l0_reverse"));
    assert!(Tagger::TENSORS.tensor(9).unwrap().name.eq_str("lstm.weight_ih_l1"));
}

#[test]
fn baked_weights_are_the_files_values_in_state_dict_order() {
    let file = Fixture::load("baked/tiny");
    let mut expected = Vec::new();
    let mut buffers = Vec::new();
    for name in ["fc1.weight", "fc1.bias", "bn.weight", "bn.bias", "out.weight", "out.bias"] {
        expected.extend_from_slice(file.values(name));
    }
    for name in ["bn.running_mean", "bn.running_var", "bn.num_batches_tracked"] {
        buffers.extend_from_slice(file.values(name));
    }
    expected.extend(buffers);
    assert_eq!(TINY.len(), expected.len());
    assert!(TINY.iter().zip(&expected).all(|(a, b)| a.to_bits() == b.to_bits()));
    assert_eq!(TINY[TINY.len() - 1], 3.0, "num_batches_tracked after three batches");
}

#[test]
fn baked_model_matches_pytorch() {
    let golden = Fixture::load("baked/tiny_golden");
    let x = golden.values("input");
    let y = golden.values("output");
    for (xi, yi) in x.chunks(4).zip(y.chunks(3)) {
        let out = TINY_MODEL.predict_one(&<[f32; 4]>::try_from(xi).unwrap().into());
        for (a, b) in out.iter().zip(yi) {
            assert!((a - b).abs() <= 1e-5 * (1.0 + b.abs()), "{out:?} vs {yi:?}");
        }
    }
}
