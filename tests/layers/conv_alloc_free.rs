//! The convolution family allocates nothing: after warm-up, a training step of a CNN
//! with every kind of the family (convolutions, batch norm with its running
//! statistics, pooling, transposed convolution, upsampling, reshapes) and its batch-1
//! inference on the stack make no heap allocation, as a counting global allocator
//! shows.
use nn_core::prelude::*;

use crate::counting_alloc::allocations as allocations_during;

network! {
    /// Every kind of the convolution family in one network.
    pub struct ConvZoo: [1, 16, 16] -> [10] {
        conv1: Conv2d { filters: 8, kernel: 3, padding: Same },
        norm1: BatchNorm2d,
        relu1: Relu,
        pool1: MaxPool2d { size: 2 } => [8, 8, 8],
        conv2: Conv2d { filters: 8, kernel: [3, 1], stride: 2, padding: [1, 0], dilation: 1 } => [8, 4, 4],
        up: ConvTranspose2d { filters: 4, kernel: 4, stride: 2, padding: 1 } => [4, 8, 8],
        avg: AvgPool2d { size: 3, stride: 2, padding: 1 } => [4, 4, 4],
        bigger: Upsample { scale: 2 } => [4, 8, 8],
        signal: Reshape { shape: [4, 64] },
        conv1d: Conv1d { filters: 4, kernel: 5, stride: 2, padding: 2 } => [4, 32],
        norm1d: BatchNorm1d,
        pool1d: MaxPool1d { size: 2 } => [4, 16],
        image: Reshape { shape: [4, 4, 4] },
        global: GlobalAvgPool2d => [4],
        fc: Dense { units: 32, activation: Relu },
        wide: Reshape { shape: [2, 16] },
        gmax: GlobalMaxPool1d => [2],
        flat: Flatten,
        logits: Dense { units: 10 },
    }
}

#[test]
fn a_cnn_training_step_and_batch_one_inference_allocate_nothing() {
    let batch = 8;
    let mut rng = Rng::new(1);
    let x: Vec<f32> = (0..batch * 256).map(|_| rng.uniform()).collect();
    let t: Vec<f32> = (0..batch).map(|i| (i % 10) as f32).collect();
    let mut model = Model::<ConvZoo>::new(3);
    crate::alloc_free::train_without_allocating(&mut model, &x, &t, 5, &mut rng);
    // The running statistics moved: six steps of two batch norms.
    let mut tracked = Vec::new();
    model.visit_tensors(&mut |t| {
        if t.path.to_string().ends_with("num_batches_tracked") {
            tracked.push(t.offset);
        }
    });
    assert_eq!(tracked.len(), 2);
    assert!(tracked.iter().all(|&at| model.buffers()[at] == 6.0));

    let sample = Tensor::<Shape3<1, 16, 16>>::from_slice(&x[..256]).unwrap();
    let mut out = Tensor::<Shape1<10>>::zeros();
    let n = allocations_during(|| out = model.predict_one(&sample));
    assert_eq!(n, 0, "batch-1 inference allocated {n} times");
    assert!(out.iter().all(|v| v.is_finite()));
    assert_eq!(out.as_slice(), &model.predict(&x[..256]).unwrap()[..]);
}
