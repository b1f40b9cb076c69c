use nn_core::layers::CrossAttention;
use nn_core::{Shape2, Tensor};

fn main() {
    let cross = CrossAttention::<4, 6, 8, 2>::new(false, 0.0);
    let params = vec![0.0; CrossAttention::<4, 6, 8, 2>::PARAMS];
    let query = [Tensor::<Shape2<4, 8>>::zeros()];
    let context = [Tensor::<Shape2<5, 8>>::zeros()];
    let _ = cross.attend(&params, &query, &context);
}
