//! Networks for the `io_*` tests, plus a layer with buffers and a temporary directory.
//!
//! Included with `#[path = "common/io_nets.rs"] mod io_nets;`.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use nn_core::layer::SummaryRow;
use nn_core::{BackwardCtx, Layer, Rng, Shape, Shape1, TensorInfo, TensorPath, TrainCtx, Weights};

nn_core::network! {
    /// 64 -> 32 (ReLU) -> 16 (tanh): `fc1.weight [32, 64]`, `fc1.bias`, `fc2.weight [16, 32]`, `fc2.bias`.
    pub struct Encoder: [64] -> [16] {
        fc1: Dense { units: 32, activation: Relu },
        fc2: Dense { units: 16, activation: Tanh },
    }

    /// An `Encoder` named `encoder`, then `head: Dense 16 -> 10`.
    pub struct Classifier: [64] -> [10] {
        encoder: Encoder,
        head: Dense { units: 10 },
    }
}

/// `y = (x - running_mean) * weight`: one parameter tensor `weight [N]` and one buffer
/// `running_mean [N]`, as a normalisation layer keeps running statistics.
#[derive(Clone, Copy, Debug, Default)]
pub struct Center<const N: usize>;

impl<const N: usize> Layer for Center<N> {
    type Input = Shape1<N>;
    type Output = Shape1<N>;
    const PARAMS: usize = N;
    const BUFFERS: usize = N;
    const KIND: &'static str = "Center";

    fn init(&self, params: &mut [f32], buffers: &mut [f32], rng: &mut Rng) {
        params.iter_mut().for_each(|p| *p = 1.0 + 0.1 * rng.normal());
        buffers.iter_mut().for_each(|b| *b = rng.normal());
    }
    fn forward(&self, w: Weights<'_>, x: &[f32], y: &mut [f32], _scratch: &mut [f32]) {
        let (params, buffers) = (w.params, w.buffers);
        for (xs, ys) in x.chunks(N).zip(y.chunks_mut(N)) {
            for i in 0..N {
                ys[i] = (xs[i] - buffers[i]) * params[i];
            }
        }
    }
    fn forward_train(&self, x: &[f32], y: &mut [f32], cx: TrainCtx<'_>) {
        let TrainCtx { params, buffers, scratch, .. } = cx;
        self.forward(Weights::new(params, buffers), x, y, scratch)
    }
    fn backward(&self, x: &[f32], _y: &[f32], dy: &mut [f32], dx: Option<&mut [f32]>, cx: BackwardCtx<'_>) {
        let BackwardCtx { params, grads, .. } = cx;
        let _ = (params, x, dy, dx, grads);
    }
    fn visit_tensors(
        &self,
        path: Option<&TensorPath<'_>>,
        params_at: usize,
        buffers_at: usize,
        f: &mut dyn FnMut(&TensorInfo<'_>),
    ) {
        let weight = TensorPath::new(path, "weight");
        f(&TensorInfo { path: &weight, shape: &[N], offset: params_at, len: N, trainable: true });
        let mean = TensorPath::new(path, "running_mean");
        f(&TensorInfo { path: &mean, shape: &[N], offset: buffers_at, len: N, trainable: false });
    }
    fn visit_summary(&self, name: &str, depth: usize, f: &mut dyn FnMut(&SummaryRow<'_>)) {
        f(&SummaryRow { name, kind: Self::KIND, depth, output: <Shape1<N> as Shape>::DIMS, params: N });
    }
}

nn_core::network! {
    /// `norm: Center<8>` (a parameter and a buffer), then `fc: Dense 8 -> 3`. The state
    /// is `norm.weight, fc.weight, fc.bias` then `norm.running_mean`; the `state_dict`
    /// order is `norm.weight, norm.running_mean, fc.weight, fc.bias`.
    pub struct Centered: [8] -> [3] {
        norm: Center<8>,
        fc: Dense { units: 3 },
    }

    /// `bn: BatchNorm1d(4)` (`weight`, `bias`; buffers `running_mean`, `running_var`,
    /// `num_batches_tracked`), then `fc: Dense 4 -> 2`.
    pub struct Normed: [4] -> [2] {
        bn: BatchNorm1d,
        fc: Dense { units: 2 },
    }
}

/// Every tensor of a model: `(name, shape, state range)`, in `state_dict` order.
pub fn tensors<L: Layer, P: AsRef<[f32]>>(
    model: &nn_core::Model<L, P>,
) -> Vec<(String, Vec<usize>, std::ops::Range<usize>)> {
    let mut out = Vec::new();
    model.visit_tensors(&mut |t| {
        let start = if t.trainable { t.offset } else { L::PARAMS + t.offset };
        out.push((t.path.to_string(), t.shape.to_vec(), start..start + t.len))
    });
    out
}

/// The bit patterns of `values`, to compare floats (NaN included) exactly.
pub fn bits(values: &[f32]) -> Vec<u32> {
    values.iter().map(|v| v.to_bits()).collect()
}

/// A fresh directory under the system's temporary directory, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("nn-core-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// The names of the files in the directory, sorted.
    pub fn files(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
