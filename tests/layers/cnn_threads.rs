//! One thread and two give the same bits for the digits CNN at batch 1: its second
//! convolution (16 -> 32 channels, 3x3 on 8x8, about 295K multiply-adds) is split
//! between the threads by filters (`kernels::conv::FILTERS_PARALLEL_MIN_MACS`), with
//! the `threading` feature (`cargo test --workspace` enables it through `nn-bench`;
//! alone, `cargo test --test layers --features nn-core/threading`). The outputs of
//! `predict_one` for several images, back to back and after idle gaps (a worker
//! parked), are computed in child processes of this test binary with
//! `MATMUL_NUM_THREADS` 1 and 2 and compared bit for bit; `NN_ISA` is passed on, so
//! `NN_ISA=avx2` compares the AVX2 kernels' split.
use nn_core::prelude::*;

use crate::forward_scratch::DigitCnn;
use crate::thread_children;

/// The child's marker: set, the ignored test prints its outputs.
const CHILD: &str = "NN_CNN_THREADS_CHILD";

/// The logits of `predict_one` for 40 images (one holding a negative zero), four of
/// them after a pause of 2 ms.
fn outputs() -> Vec<f32> {
    let model = Model::<DigitCnn>::new(5);
    let mut rng = Rng::new(6);
    let mut out = Vec::new();
    for i in 0..40 {
        let mut x: Vec<f32> = (0..64).map(|_| rng.uniform_in(-1.0, 1.0)).collect();
        if i == 3 {
            x[10] = -0.0;
        }
        if i % 10 == 9 {
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        let x = Tensor::<Shape3<1, 8, 8>>::from_slice(&x).unwrap();
        out.extend_from_slice(model.predict_one(&x).as_slice());
    }
    out
}

/// Run by [`one_and_two_threads_give_the_same_bits`] in a child process: prints the
/// outputs' bits.
#[test]
#[ignore = "a child process of one_and_two_threads_give_the_same_bits"]
fn cnn_outputs_under_threads() {
    if !thread_children::is_child(CHILD) {
        return;
    }
    let values = outputs();
    assert_eq!(values.len(), 40 * 10, "outputs");
    // (A line of its own after the test's name, which libtest prints first.)
    println!("outputs");
    thread_children::print_bits("predict_one", &values);
}

#[test]
fn one_and_two_threads_give_the_same_bits() {
    thread_children::assert_one_and_two_threads_agree("cnn_threads::cnn_outputs_under_threads", CHILD, 1);
}
