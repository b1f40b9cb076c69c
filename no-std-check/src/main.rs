//! A `#![no_std]`, `#![no_main]` program with its own panic handler, linked for the
//! host: if anything in `nn-core` (without default features) needed `std` or `alloc`,
//! this would not link. It initialises a dense network in a stack array, runs
//! batch-1 inference and returns 0 when the outputs are a probability distribution.
#![no_std]
#![no_main]

use core::panic::PanicInfo;

use nn_core::prelude::*;

network! {
    /// A digits-sized classifier.
    pub struct Net: [64] -> [10] {
        fc1: Dense { units: 32, activation: Relu },
        fc2: Dense { units: 16, activation: Tanh },
        out: Dense { units: 10, activation: Softmax },
    }
}

const STATE_LEN: usize = <Net as Layer>::PARAMS + <Net as Layer>::BUFFERS;

fn run() -> Option<()> {
    let mut state = [0.0f32; STATE_LEN];
    let mut model = Model::from_state(Net, &mut state[..]).ok()?;
    model.init(7);
    let mut x = Tensor::<Shape1<64>>::zeros();
    for (i, v) in x.iter_mut().enumerate() {
        *v = (i % 17) as f32 / 16.0;
    }
    let y = model.predict_one(&x);
    let sum: f32 = y.iter().sum();
    let ok = (sum - 1.0).abs() < 1e-5 && y.iter().all(|&p| p > 0.0 && p < 1.0);
    ok.then_some(())
}

/// The C entry point (no `std` runtime).
#[no_mangle]
pub extern "C" fn main(_argc: i32, _argv: *const *const u8) -> i32 {
    match run() {
        Some(()) => 0,
        None => 1,
    }
}

// The C runtime (`_start`, `memcpy`): the only library linked besides `core`.
#[link(name = "c")]
extern "C" {}

#[panic_handler]
fn panic(_info: &PanicInfo) -> ! {
    loop {}
}
