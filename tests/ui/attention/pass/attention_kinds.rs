//! Every attention kind of `network!`, including a network whose output is known only
//! as a type feeding attention, run forward, with PyTorch's parameter names.
use nn_core::prelude::*;

network! {
    /// Normalises a sequence.
    pub struct Norm: [8, 16] -> [8, 16] {
        norm: LayerNorm,
    }

    /// Every attention kind.
    pub struct Everything: [8, 16] -> [8, 16] {
        pos: PositionalEncoding,
        learned: LearnedPositional,
        pre: Norm,
        attn: MultiHeadAttention { heads: 4, causal: true },
        norm: LayerNorm { eps: 1e-6 },
        ff: FeedForward { units: 32, activation: Gelu },
        block: TransformerEncoderLayer { heads: 2, ff: 32, norm_first: true, dropout: 0.0 } => [8, 16],
        encoder: TransformerEncoder {
            heads: 4, ff: 24, layers: 2, norm_first: false, activation: Gelu, dropout: 0.2, causal: true, eps: 1e-6,
        },
        vector_norm: LayerNorm,
    }

    /// One head is allowed.
    pub struct OneHead: [3, 5] -> [3, 5] {
        attn: MultiHeadAttention { heads: 1 },
        encoder: TransformerEncoder { heads: 5, ff: 4 },
    }
}

fn main() {
    let model = Model::<Everything>::new(1);
    let y = model.predict_one(&Default::default());
    assert!(y.iter().all(|v| v.is_finite()));
    let mut names = Vec::new();
    model.visit_tensors(&mut |t| names.push(t.path.to_string()));
    for name in [
        "learned.weight",
        "pre.norm.weight",
        "attn.in_proj_weight",
        "attn.out_proj.bias",
        "ff.linear1.weight",
        "block.self_attn.in_proj_bias",
        "block.norm2.bias",
        "encoder.layers.0.self_attn.out_proj.weight",
        "encoder.layers.1.linear2.bias",
        "encoder.layers.1.norm1.weight",
        "vector_norm.bias",
    ] {
        assert!(names.iter().any(|n| n == name), "no tensor {name} in {names:?}");
    }
    let _ = Model::<OneHead>::new(2).predict_one(&Default::default());
}
