use nn_core::prelude::*;

network! {
    pub struct Encoder: [8] -> [4] {
        fc: Dense { units: 4 },
    }
}

network! {
    /// A network used as a layer is a type: rustc names the close one.
    pub struct Net: [8] -> [2] {
        encoder: Encodr,
        head: Dense { units: 2 },
    }
}

fn main() {}
