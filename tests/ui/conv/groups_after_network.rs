use nn_core::prelude::*;

network! {
    /// Produces [3, 3, 3]: the macro sees only the type `Tiny::Output` below.
    pub struct Tiny: [1, 6, 6] -> [3, 3, 3] {
        conv: Conv2d { filters: 3, kernel: 2, stride: 2 },
    }

    pub struct Net: [1, 6, 6] -> [1] {
        tiny: Tiny,
        depthwise: Conv2d { filters: 4, kernel: 1, groups: 2 },
        global: GlobalAvgPool2d,
        fc: Dense { units: 1 },
    }
}

fn main() {
    let model = Model::<Net>::new(0);
    let _ = model.predict_one(&Default::default());
}
