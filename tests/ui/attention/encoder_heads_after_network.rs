use nn_core::prelude::*;

network! {
    pub struct Normalise: [16, 30] -> [16, 30] {
        norm: LayerNorm,
    }

    // The width comes from `Normalise`'s type: the layer's own const check reports it.
    pub struct Net: [16, 30] -> [16, 30] {
        normalise: Normalise,
        encoder: TransformerEncoder { heads: 4, ff: 64 },
    }
}

fn main() {
    let _ = Model::<Net>::new(0);
}
