use nn_core::prelude::*;

const STRIDE: usize = 2;
const HEADS: usize = 2;

network! {
    /// A convolution's stride decides its output shape, which the macro computes.
    pub struct Conv: [1, 8, 8] -> [8, 3, 3] {
        conv: Conv2d { filters: 8, kernel: 3, stride: STRIDE },
    }
}

network! {
    pub struct Attention: [4, 8] -> [4, 8] {
        attn: MultiHeadAttention { heads: HEADS },
    }
}

fn main() {}
