//! `include_weights!` with a NaN weight (`tools/fixtures/malformed_weights.py`). The path is
//! relative to the repository's `Cargo.toml`, the package that holds this file.
use nn_core::prelude::*;

network! {
    pub struct Tiny: [4] -> [3] {
        fc1: Dense { units: 8 },
        relu: Relu,
        bn: BatchNorm1d,
        out: Dense { units: 3 },
    }
}

static WEIGHTS: [f32; Tiny::STATE_LEN] = nn_core::include_weights!(Tiny, "tests/ui/weights/non_finite_nan.safetensors");

fn main() {
    let model = Model::from_static(Tiny, &WEIGHTS);
    let _ = model.predict_one(&[0.0; 4].into());
}
