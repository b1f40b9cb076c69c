//! Speed of one Transformer encoder layer (sequence 32, width 64, 4 heads, feed-forward
//! 256, batch 32, post-norm, ReLU, dropout off): training forward plus backward (input
//! and parameter gradients), and inference. Not a check: run it in release,
//!
//! ```text
//! cargo test --release --test layers attention_bench -- --ignored --nocapture
//! ```
//!
//! and compare with PyTorch on the same machine and thread count:
//!
//! ```text
//! python3 - <<'EOF'
//! import time, torch
//! torch.set_num_threads(1)  # or 2
//! layer = torch.nn.TransformerEncoderLayer(64, 4, 256, dropout=0.0, batch_first=True)
//! x = torch.randn(32, 32, 64, requires_grad=True); dy = torch.randn(32, 32, 64)
//! def step():
//!     layer.zero_grad(); x.grad = None
//!     layer(x).backward(dy)
//! for _ in range(20): step()
//! times = []
//! for _ in range(200):
//!     t = time.perf_counter(); step(); times.append(time.perf_counter() - t)
//! print(f"median {sorted(times)[len(times) // 2] * 1e3:.3f} ms")
//! EOF
//! ```
use std::time::Instant;

use crate::standalone::Standalone;

use nn_core::layers::TransformerEncoderLayer;
use nn_core::{Activation, Layer, Rng};

const T: usize = 32;
const D: usize = 64;
const BATCH: usize = 32;
type Encoder = TransformerEncoderLayer<T, D, 4, 256>;

/// The median of `runs` timings of `f`, in milliseconds, after `runs / 10` warm-ups.
fn median_ms(runs: usize, mut f: impl FnMut()) -> f64 {
    for _ in 0..runs / 10 {
        f();
    }
    let mut times: Vec<f64> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[runs / 2]
}

#[test]
#[ignore = "a measurement, run in release with --ignored --nocapture"]
fn encoder_layer_forward_and_backward() {
    let layer = Encoder::new(false, Activation::Relu, 0.0);
    let mut rng = Rng::new(1);
    let mut params = vec![0.0; Encoder::PARAMS];
    layer.init(&mut params, &mut [], &mut rng);
    let n = BATCH * T * D;
    let x: Vec<f32> = (0..n).map(|_| rng.normal()).collect();
    let dy0: Vec<f32> = (0..n).map(|_| rng.normal()).collect();
    let (mut y, mut dy, mut dx) = (vec![0.0; n], vec![0.0; n], vec![0.0; n]);
    let mut s = Standalone::of(&layer, BATCH, 2);

    let train = median_ms(200, || {
        s.grads.fill(0.0);
        layer.forward_train(&x, &mut y, s.train(&params));
        dy.copy_from_slice(&dy0);
        layer.backward(&x, &y, &mut dy, Some(&mut dx), s.backward(&params));
    });
    let forward_train = median_ms(200, || layer.forward_train(&x, &mut y, s.train(&params)));
    let infer = median_ms(200, || layer.forward(nn_core::Weights::new(&params, &[]), &x, &mut y, &mut s.scratch));
    assert!(y.iter().chain(&dx).chain(&s.grads).all(|v| v.is_finite()));
    println!(
        "encoder layer T={T} D={D} H=4 F=256 batch {BATCH}: forward+backward {train:.3} ms (training forward \
         {forward_train:.3} ms), inference {infer:.3} ms ({} parameters)",
        Encoder::PARAMS
    );
}
