use nn_core::layers::MultiHeadAttention;

// Without the macro, the layer's constructor checks the heads when it is compiled.
const ATTENTION: MultiHeadAttention<10, 64, 3> = MultiHeadAttention::new(false, 0.0);

fn main() {
    let _ = ATTENTION;
}
