use nn_core::prelude::*;

network! {
    pub struct Net: [64] -> [4, 4] {
        image: Reshape { shape: [4, 4] },
    }
}

fn main() {}
