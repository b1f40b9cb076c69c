use nn_core::prelude::*;

network! {
    /// Produces [2, 3, 3]: the macro sees only the type `Tiny::Output` below.
    pub struct Tiny: [1, 6, 6] -> [2, 3, 3] {
        conv: Conv2d { filters: 2, kernel: 2, stride: 2 },
    }

    pub struct Net: [1, 6, 6] -> [1] {
        tiny: Tiny,
        conv: Conv2d { filters: 1, kernel: 5 },
        global: GlobalAvgPool2d,
    }
}

fn main() {
    let model = Model::<Net>::new(0);
    let _ = model.predict_one(&Default::default());
}
