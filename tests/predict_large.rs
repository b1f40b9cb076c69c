//! Batch-1 inference of a network too large for a thread's stack: a 3x256x256 image
//! through a 16-filter convolution (4 MiB of activations). `predict_one` must not put
//! them on the stack: it runs here on a thread with the default 2 MiB stack, and its
//! result is checked against the value worked out by hand.
use nn_core::layer::STACK_LIMIT_BYTES;
use nn_core::prelude::*;

network! {
    /// A convolution over a large image, averaged per filter, then one output.
    pub struct LargeImage: [3, 256, 256] -> [1] {
        conv: Conv2d { filters: 16, kernel: 3, padding: Same },
        relu: Relu,
        pool: GlobalAvgPool2d,
        out: Dense { units: 1 },
    }
}

/// Filter `f` has every weight `(f % 4 + 1) / 256` and bias `f / 256`; the output
/// layer weighs filter `f` by `(-1)^f` and adds 0.5. Every convolution output is then a
/// multiple of 1/256 below 0.5, so each filter's sum over the 65 536 positions is exact
/// in `f32` (below 2^16, in steps of 2^-8) whatever the order of the additions.
fn model() -> Model<LargeImage> {
    let mut model = Model::<LargeImage>::new(1);
    let mut tensors = Vec::new();
    model.visit_tensors(&mut |t| tensors.push((t.path.to_string(), t.offset, t.len)));
    let state = model.state_mut();
    for (name, offset, len) in tensors {
        let values = &mut state[offset..offset + len];
        match name.as_str() {
            "conv.weight" => values.iter_mut().enumerate().for_each(|(i, v)| *v = ((i / 27) % 4 + 1) as f32 / 256.0),
            "conv.bias" => values.iter_mut().enumerate().for_each(|(f, v)| *v = f as f32 / 256.0),
            "out.weight" => values.iter_mut().enumerate().for_each(|(f, v)| *v = if f % 2 == 0 { 1.0 } else { -1.0 }),
            "out.bias" => values[0] = 0.5,
            other => panic!("unexpected tensor {other}"),
        }
    }
    model
}

/// On an image of ones, a 3x3 `Same` convolution's window at position `(y, x)` covers
/// `rows(y) * cols(x) * 3` ones, where a border row or column has 2 neighbours in
/// range and the others 3: summed over a 256-wide axis, `256 * 3 - 2 = 766`. The mean
/// over the 256 x 256 positions of filter `f` is `w_f * 3 * 766^2 / 65536 + b_f`.
fn expected() -> f64 {
    let ones = 3.0 * 766.0 * 766.0 / 65536.0;
    let mut sum = 0.5;
    for f in 0..16 {
        let mean = (f % 4 + 1) as f64 / 256.0 * ones + f as f64 / 256.0;
        sum += if f % 2 == 0 { mean } else { -mean };
    }
    sum
}

// The network is twice a spawned thread's 2 MiB stack, far above the limit.
const _: () = assert!(LargeImage::STACK_BOUND_BYTES > 4 << 20 && LargeImage::STACK_BOUND_BYTES > STACK_LIMIT_BYTES);

#[test]
fn predict_one_runs_on_a_default_thread_stack() {
    let got = std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(|| {
            let model = model();
            // SAFETY: a tensor is floats, and all-zero bits are the float 0.0. (Built on
            // the heap: the image itself is 768 KiB.)
            let mut x = unsafe { Box::<Tensor<Shape3<3, 256, 256>>>::new_zeroed().assume_init() };
            x.as_mut_slice().fill(1.0);
            model.predict_one(&x)[0]
        })
        .unwrap()
        .join()
        .unwrap();
    let expected = expected();
    assert!((got as f64 - expected).abs() <= 1e-6 * expected.abs(), "{got} against {expected}");
}
