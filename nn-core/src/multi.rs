//! Networks with several inputs or outputs, as Keras's functional API builds them.
//!
//! A graph network with several `input` or `output` statements implements [`MultiIo`]:
//! its inputs and outputs as tuples of shapes, in declared order. It is also a
//! [`Layer`] whose sample is the concatenation of its inputs' samples (and whose
//! output sample concatenates its outputs' samples), so a [`Model`](crate::model::Model) of it has every
//! method of a model, and `Fit` trains it as any other:
//!
//! - [`Model::predict_multi`](crate::model::Model::predict_multi) takes a tuple of input batches and returns a tuple of
//!   output batches;
//! - [`Dataset::multi`](crate::train::Dataset::multi) builds a data set from a tuple of
//!   input arrays and a tuple of target arrays (Keras's `fit(x=[a, b], y=[u, v])`);
//! - [`Losses`] gives each output its loss and weight (Keras's
//!   `compile(loss=[...], loss_weights=[...])`), and [`Losses::metric`] a metric to
//!   one output (`"{output}_{metric}"` in histories); histories and evaluations
//!   report each output's unweighted loss beside the total, as `"{output}_loss"`.
//!
//! ```
//! use nn_core::prelude::*;
//! network! {
//!     /// Two inputs, two outputs: a score of the pair and a reconstruction of `a`.
//!     pub struct Pair: ([3], [3]) -> ([1], [3]) graph {
//!         input a, b;
//!         ha = enc(a): Dense { units: 4, activation: Tanh };
//!         hb = enc(b);
//!         h = concat(ha, hb);
//!         score = head(h): Dense { units: 1 };
//!         back = dec(ha): Dense { units: 3 };
//!         output score, back;
//!     }
//! }
//! let a = [0.0, 1.0, 0.5, 1.0, 0.0, 0.5];
//! let b = [0.0, 1.0, 0.5, 0.5, 0.5, 0.0];
//! let (same, back) = ([1.0, 0.0], a);
//! let data = Dataset::multi::<Pair>((&a, &b), (&same, &back)).unwrap();
//! let mut model = Model::<Pair>::new(1);
//! let losses = model.loss_per_output((BinaryCrossEntropy::from_logits(), MeanSquaredError)).weights([1.0, 0.5]);
//! let mut fit = Fit::new(Adam::new(0.05), losses).epochs(200).batch_size(2);
//! let history = fit.run(&mut model, &data, None).unwrap();
//! assert!(history.series("loss").last().unwrap() < &0.05);
//! assert_eq!(history.series("back_loss").len(), 200);
//! let (score, back) = model.predict_multi((&a, &b)).unwrap();
//! assert!(score[0] > 0.0 && score[1] < 0.0);
//! assert_eq!(back.len(), 6);
//! ```
use core::fmt;
use core::marker::PhantomData;

use crate::layer::Layer;
use crate::loss::{Loss, TargetError};
use crate::model::BatchLenError;
use crate::shape::{Shape, Tensor};

#[cfg(feature = "alloc")]
use alloc::vec::Vec;

/// A network with several inputs or outputs (a graph network with several `input` or
/// `output` statements). As a [`Layer`], its sample is the concatenation of its
/// inputs' samples in declared order, and its output sample the concatenation of its
/// outputs'.
pub trait MultiIo: Layer {
    /// The input shapes, in declared order: `(Shape1<64>, Shape1<64>)`.
    type Inputs: ShapeTuple;
    /// The output shapes, in declared order.
    type Outputs: ShapeTuple;
    /// The names of the inputs, in declared order.
    const INPUT_NAMES: &'static [&'static str];
    /// The names of the outputs, in declared order.
    const OUTPUT_NAMES: &'static [&'static str];
    /// The history names of the series of each output, Keras's
    /// `"{output}_{metric}"`: `[output][Metric::index]`, then the output's loss
    /// `"{output}_loss"` at [`LOSS_NAME`].
    #[doc(hidden)]
    const OUTPUT_METRIC_NAMES: &'static [&'static [&'static str]];
}

/// The history names of the metrics of output `$out`, in the order of
/// `Metric::index`, then of its loss (what `network!` writes for
/// [`MultiIo::OUTPUT_METRIC_NAMES`]).
#[doc(hidden)]
#[macro_export]
macro_rules! __output_metric_names {
    ($out:literal) => {
        [concat!($out, "_accuracy"), concat!($out, "_mae"), concat!($out, "_mse"), concat!($out, "_loss")]
    };
}

/// The position of an output's loss name in [`MultiIo::OUTPUT_METRIC_NAMES`].
#[doc(hidden)]
pub const LOSS_NAME: usize = 3;

/// A tuple of [`Shape`]s: the inputs or outputs of a [`MultiIo`] network.
pub trait ShapeTuple: 'static {
    /// Floats per sample of each shape.
    const LENS: &'static [usize];
    /// Floats per sample of all of them.
    const LEN: usize;
    /// One batch of each, borrowed: `(&[f32], &[f32])`.
    type Slices<'a>;
    /// One batch of each, owned: `(Vec<f32>, Vec<f32>)`.
    #[cfg(feature = "alloc")]
    type Vecs;
    /// One sample of each: `(Tensor<A>, Tensor<B>)`.
    type Tensors;
    /// One sample of each, borrowed: `(&Tensor<A>, &Tensor<B>)`.
    type TensorRefs<'a>;

    /// The values of one sample of each, in order.
    fn tensor_slices<'a>(samples: Self::TensorRefs<'a>, out: &mut [&'a [f32]]);

    /// The samples of the concatenation `values` (`LEN` floats), one per shape.
    fn tensors(values: &[f32]) -> Self::Tensors;

    /// The slices of `batches`, in order.
    fn slices<'a>(batches: Self::Slices<'a>, out: &mut [&'a [f32]]);

    /// Splits `values`, one vector per shape, into the owned tuple.
    #[cfg(feature = "alloc")]
    fn vecs(values: Vec<Vec<f32>>) -> Self::Vecs;
}

macro_rules! shape_tuple {
    ($n:literal; $($t:ident $i:tt),+) => {
        impl<$($t: Shape),+> ShapeTuple for ($($t,)+) {
            const LENS: &'static [usize] = &[$(<$t as Shape>::LEN),+];
            const LEN: usize = 0 $(+ <$t as Shape>::LEN)+;
            type Slices<'a> = ($(shape_tuple!(@slice $t 'a),)+);
            #[cfg(feature = "alloc")]
            type Vecs = ($(shape_tuple!(@vec $t),)+);
            type Tensors = ($(Tensor<$t>,)+);
            type TensorRefs<'a> = ($(&'a Tensor<$t>,)+);

            fn tensor_slices<'a>(samples: Self::TensorRefs<'a>, out: &mut [&'a [f32]]) {
                $(out[$i] = samples.$i.as_slice();)+
            }

            fn tensors(values: &[f32]) -> Self::Tensors {
                let mut at = 0;
                ($({
                    let mut t = Tensor::<$t>::zeros();
                    t.as_mut_slice().copy_from_slice(&values[at..at + <$t as Shape>::LEN]);
                    at += <$t as Shape>::LEN;
                    let _ = at;
                    t
                },)+)
            }

            fn slices<'a>(batches: Self::Slices<'a>, out: &mut [&'a [f32]]) {
                $(out[$i] = batches.$i;)+
            }

            #[cfg(feature = "alloc")]
            fn vecs(values: Vec<Vec<f32>>) -> Self::Vecs {
                let mut values = values.into_iter();
                ($(shape_tuple!(@next values $t),)+)
            }
        }
    };
    (@slice $t:ident $a:lifetime) => { &$a [f32] };
    (@vec $t:ident) => { Vec<f32> };
    (@next $v:ident $t:ident) => { $v.next().unwrap_or_default() };
}

shape_tuple!(1; A 0);
shape_tuple!(2; A 0, B 1);
shape_tuple!(3; A 0, B 1, C 2);
shape_tuple!(4; A 0, B 1, C 2, D 3);
shape_tuple!(5; A 0, B 1, C 2, D 3, E 4);
shape_tuple!(6; A 0, B 1, C 2, D 3, E 4, F 5);

/// The most inputs or outputs a [`MultiIo`] network has.
pub const MAX_PARTS: usize = 6;

/// Interleaves `parts` (part `k` holding `batch * lens[k]` floats) into `out`
/// (`batch * sum(lens)` floats): sample `s` of `out` is sample `s` of each part, in
/// order.
pub fn interleave(parts: &[&[f32]], lens: &[usize], out: &mut [f32]) {
    let total: usize = lens.iter().sum();
    if total == 0 {
        return;
    }
    for (s, sample) in out.chunks_exact_mut(total).enumerate() {
        let mut at = 0;
        for (part, &len) in parts.iter().zip(lens) {
            sample[at..at + len].copy_from_slice(&part[s * len..(s + 1) * len]);
            at += len;
        }
    }
}

/// The inverse of [`interleave`]: splits `packed` (`batch * sum(lens)` floats) into
/// `parts`, part `k` receiving `batch * lens[k]` floats.
pub fn deinterleave(packed: &[f32], lens: &[usize], parts: &mut [&mut [f32]]) {
    let total: usize = lens.iter().sum();
    if total == 0 {
        return;
    }
    for (s, sample) in packed.chunks_exact(total).enumerate() {
        let mut at = 0;
        for (part, &len) in parts.iter_mut().zip(lens) {
            part[s * len..(s + 1) * len].copy_from_slice(&sample[at..at + len]);
            at += len;
        }
    }
}

/// Batches of several inputs that do not fit a network (see [`Model::predict_multi`](crate::model::Model::predict_multi)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputsError {
    /// An input's batch is not a whole number of samples.
    Length {
        /// The input (from 0, in declared order).
        input: usize,
        /// Its values per sample and the values given.
        error: BatchLenError,
    },
    /// Two inputs hold different numbers of samples.
    Samples {
        /// The input (from 0) whose count differs from the first input's.
        input: usize,
        /// The first input's samples.
        expected: usize,
        /// This input's samples.
        found: usize,
    },
}

impl fmt::Display for InputsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InputsError::Length { input, error } => write!(f, "input {input}: {error}"),
            InputsError::Samples { input, expected, found } => {
                write!(f, "input {input} holds {found} samples, input 0 holds {expected}")
            }
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for InputsError {}

/// The number of samples of every part (each `lens[k]` floats per sample), the same
/// in all of them.
pub fn samples_of(parts: &[&[f32]], lens: &[usize]) -> Result<usize, InputsError> {
    let mut batch = None;
    for (input, (part, &len)) in parts.iter().zip(lens).enumerate() {
        let n = BatchLenError::samples(len, part.len()).map_err(|error| InputsError::Length { input, error })?;
        match batch {
            None => batch = Some(n),
            Some(expected) if expected != n => return Err(InputsError::Samples { input, expected, found: n }),
            Some(_) => {}
        }
    }
    Ok(batch.unwrap_or(0))
}

/// Splits interleaved samples into one vector per part.
#[cfg(feature = "alloc")]
pub(crate) fn split(packed: &[f32], lens: &[usize]) -> Vec<Vec<f32>> {
    let total: usize = lens.iter().sum();
    let batch = packed.len().checked_div(total).unwrap_or(0);
    let mut parts: Vec<Vec<f32>> = lens.iter().map(|&len| alloc::vec![0.0; batch * len]).collect();
    let mut views: Vec<&mut [f32]> = parts.iter_mut().map(|p| p.as_mut_slice()).collect();
    deinterleave(packed, lens, &mut views);
    parts
}

/// A loss per output of a [`MultiIo`] network, each with a weight: the loss of a
/// batch is `sum(weight_k * loss_k)`, as Keras's `compile(loss=[...],
/// loss_weights=[...])`. The targets of a sample are each output's targets in
/// declared order (as [`Dataset::multi`](crate::train::Dataset::multi) lays them out).
///
/// `L` is the network, inferred from the model `Fit` trains.
pub struct Losses<L, T> {
    losses: T,
    weights: [f32; MAX_PARTS],
    _network: PhantomData<fn() -> L>,
}

impl<L, T: Clone> Clone for Losses<L, T> {
    fn clone(&self) -> Self {
        Losses { losses: self.losses.clone(), weights: self.weights, _network: PhantomData }
    }
}

impl<L, T: fmt::Debug> fmt::Debug for Losses<L, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Losses").field("losses", &self.losses).field("weights", &self.weights).finish()
    }
}

impl<L, T> Losses<L, T> {
    /// One loss per output, in declared order, each of weight 1.
    pub fn new(losses: T) -> Self {
        Losses { losses, weights: [1.0; MAX_PARTS], _network: PhantomData }
    }

    /// The losses.
    pub fn losses(&self) -> &T {
        &self.losses
    }

    /// The weight of output `k`'s loss.
    pub fn weight(&self, k: usize) -> f32 {
        self.weights.get(k).copied().unwrap_or(0.0)
    }
}

/// A tuple of losses, one per output: what [`Losses`] holds.
pub trait LossTuple {
    /// The number of losses.
    const COUNT: usize;
    /// Target floats per sample of loss `k` for an output of `output_len` floats.
    fn target_len(&self, k: usize, output_len: usize) -> usize;
    /// [`Loss::check_target`] of loss `k`.
    fn check_target(&self, k: usize, target: &[f32], output_len: usize) -> Result<(), TargetError>;
    /// [`Loss::compute`] of loss `k`.
    fn compute(&self, k: usize, pred: &[f32], target: &[f32], output_len: usize, grad: Option<&mut [f32]>) -> f32;
}

macro_rules! loss_tuple {
    ($n:literal; $($t:ident $i:tt),+) => {
        impl<$($t: Loss),+> LossTuple for ($($t,)+) {
            const COUNT: usize = $n;
            fn target_len(&self, k: usize, output_len: usize) -> usize {
                match k { $($i => self.$i.target_len(output_len),)+ _ => 0 }
            }
            fn check_target(&self, k: usize, target: &[f32], output_len: usize) -> Result<(), TargetError> {
                match k { $($i => self.$i.check_target(target, output_len),)+ _ => Ok(()) }
            }
            fn compute(&self, k: usize, pred: &[f32], target: &[f32], output_len: usize, grad: Option<&mut [f32]>) -> f32 {
                match k { $($i => self.$i.compute(pred, target, output_len, grad),)+ _ => 0.0 }
            }
        }
    };
}

loss_tuple!(1; A 0);
loss_tuple!(2; A 0, B 1);
loss_tuple!(3; A 0, B 1, C 2);
loss_tuple!(4; A 0, B 1, C 2, D 3);
loss_tuple!(5; A 0, B 1, C 2, D 3, E 4);
loss_tuple!(6; A 0, B 1, C 2, D 3, E 4, F 5);

impl<L: MultiIo, T: LossTuple> Losses<L, T> {
    /// The weight of each output's loss, in declared order: one per output (another
    /// count is a compile error).
    pub fn weights<const N: usize>(mut self, weights: [f32; N]) -> Self {
        const { assert!(N == T::COUNT && N <= MAX_PARTS, "`Losses::weights` needs one weight per output") };
        self.weights[..N].copy_from_slice(&weights);
        self
    }

    #[cfg(feature = "alloc")]
    const CHECK: () = assert!(
        T::COUNT == <L::Outputs as ShapeTuple>::LENS.len(),
        "`Losses` needs one loss per output of the network"
    );

    /// `metric` on output `K` (from 0, in declared order), named in histories
    /// `"{output}_{metric}"` as Keras does (`"same_accuracy"`): for
    /// [`Fit::metrics`](crate::train::Fit::metrics) and
    /// [`Model::evaluate`](crate::model::Model::evaluate).
    #[cfg(feature = "alloc")]
    pub fn metric<const K: usize>(&self, metric: &'static crate::train::Metric) -> crate::train::Metric {
        const { assert!(K < <L::Outputs as ShapeTuple>::LENS.len(), "the network has no such output") };
        let (pred, target) = self.ranges(K);
        let name = L::OUTPUT_METRIC_NAMES.get(K).and_then(|names| names.get(metric.index())).copied();
        crate::train::Metric::Output(crate::train::OutputMetric {
            name: name.unwrap_or("output_metric"),
            pred: (pred.start, pred.end),
            target: (target.start, target.end),
            metric,
        })
    }

    /// Output `k`'s predictions and targets of a batch, sample after sample.
    #[cfg(feature = "alloc")]
    fn part(&self, k: usize, pred: &[f32], target: &[f32]) -> (Vec<f32>, Vec<f32>) {
        let (out_total, t_total) = (<L::Output as Shape>::LEN, Loss::target_len(self, 0));
        let batch = pred.len().checked_div(out_total).unwrap_or(0);
        let (out, t) = self.ranges(k);
        let gather = |values: &[f32], width: usize, range: &core::ops::Range<usize>| -> Vec<f32> {
            values.chunks_exact(width.max(1)).take(batch).flat_map(|s| s[range.clone()].iter().copied()).collect()
        };
        (gather(pred, out_total, &out), gather(target, t_total, &t))
    }

    /// Output `k`'s floats per sample and target floats per sample.
    #[cfg(feature = "alloc")]
    fn lens(&self, k: usize) -> (usize, usize) {
        let out = <L::Outputs as ShapeTuple>::LENS[k];
        (out, self.losses.target_len(k, out))
    }

    /// Output `k`'s range within an output sample and its target range within a
    /// target sample (`k` below the number of outputs).
    #[cfg(feature = "alloc")]
    fn ranges(&self, k: usize) -> (core::ops::Range<usize>, core::ops::Range<usize>) {
        let (mut out, mut target) = (0, 0);
        for j in 0..k {
            let (o, t) = self.lens(j);
            out += o;
            target += t;
        }
        let (o, t) = self.lens(k);
        (out..out + o, target..target + t)
    }
}

#[cfg(feature = "alloc")]
impl<L: MultiIo, T: LossTuple> Loss for Losses<L, T> {
    const NAME: &'static str = "loss";

    fn target_len(&self, _output_len: usize) -> usize {
        let () = Self::CHECK;
        (0..T::COUNT).map(|k| self.lens(k).1).sum()
    }

    fn check_target(&self, target: &[f32], _output_len: usize) -> Result<(), TargetError> {
        let () = Self::CHECK;
        for k in 0..T::COUNT {
            let (out, t) = self.ranges(k);
            self.losses.check_target(k, &target[t], out.len())?;
        }
        Ok(())
    }

    fn compute(&self, pred: &[f32], target: &[f32], _output_len: usize, mut grad: Option<&mut [f32]>) -> f32 {
        let () = Self::CHECK;
        let out_total = <L::Output as Shape>::LEN;
        let mut total = 0.0;
        for k in 0..T::COUNT {
            let (out, _) = self.ranges(k);
            let (p, tk) = self.part(k, pred, target);
            let weight = self.weights[k];
            match grad.as_deref_mut() {
                Some(g) => {
                    let mut gk = alloc::vec![0.0; p.len()];
                    total += weight * self.losses.compute(k, &p, &tk, out.len(), Some(&mut gk));
                    for (sample, gs) in g.chunks_exact_mut(out_total).zip(gk.chunks_exact(out.len().max(1))) {
                        for (d, s) in sample[out.clone()].iter_mut().zip(gs) {
                            *d = weight * s;
                        }
                    }
                }
                None => total += weight * self.losses.compute(k, &p, &tk, out.len(), None),
            }
        }
        total
    }

    fn parts(&self) -> usize {
        T::COUNT
    }

    fn part_name(&self, k: usize) -> &'static str {
        L::OUTPUT_METRIC_NAMES.get(k).and_then(|names| names.get(LOSS_NAME)).copied().unwrap_or("output_loss")
    }

    fn compute_parts(&self, pred: &[f32], target: &[f32], _output_len: usize, out: &mut [f32]) {
        let () = Self::CHECK;
        for (k, value) in out.iter_mut().enumerate().take(T::COUNT) {
            let (p, tk) = self.part(k, pred, target);
            *value = self.losses.compute(k, &p, &tk, <L::Outputs as ShapeTuple>::LENS[k], None);
        }
    }
}
