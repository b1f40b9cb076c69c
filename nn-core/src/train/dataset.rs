//! `Dataset`: inputs and targets as two contiguous arrays.
use alloc::vec::Vec;
use core::fmt;

use crate::multi::{interleave, samples_of, InputsError, MultiIo, ShapeTuple, MAX_PARTS};
use crate::rng::Rng;

/// Samples for training or evaluation: `len` inputs of `input_len` floats and `len`
/// targets of `target_len` floats (a class index is one float), each contiguous, so a
/// batch is a sub-slice or a gather into one matrix.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    inputs: Vec<f32>,
    input_len: usize,
    targets: Vec<f32>,
    target_len: usize,
}

/// The arrays given to [`Dataset::new`] do not describe whole samples.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DatasetError {
    /// A sample width of zero.
    ZeroWidth,
    /// The inputs are not a whole number of samples.
    RaggedInputs {
        /// Floats given.
        values: usize,
        /// Floats per sample.
        width: usize,
    },
    /// The number of targets differs from the number of inputs.
    CountMismatch {
        /// Input samples.
        inputs: usize,
        /// Target samples (or values, when ragged).
        targets: usize,
    },
    /// Two inputs of a network with several inputs hold different numbers of samples
    /// ([`Dataset::multi`]).
    InputsDiffer {
        /// The input (from 0) whose count differs from the first input's.
        input: usize,
        /// The first input's samples.
        expected: usize,
        /// This input's samples.
        found: usize,
    },
}

impl fmt::Display for DatasetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DatasetError::ZeroWidth => f.write_str("a sample cannot have zero values"),
            DatasetError::RaggedInputs { values, width } => {
                write!(f, "{values} input values are not a whole number of samples of {width}")
            }
            DatasetError::CountMismatch { inputs, targets } => {
                write!(f, "{inputs} input samples but {targets} targets")
            }
            DatasetError::InputsDiffer { input, expected, found } => {
                write!(f, "input {input} holds {found} samples, input 0 holds {expected}")
            }
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for DatasetError {}

impl Dataset {
    /// A data set from flat inputs (`input_len` per sample) and flat targets
    /// (`target_len` per sample).
    pub fn new(inputs: Vec<f32>, input_len: usize, targets: Vec<f32>, target_len: usize) -> Result<Self, DatasetError> {
        if input_len == 0 || target_len == 0 {
            return Err(DatasetError::ZeroWidth);
        }
        if !inputs.len().is_multiple_of(input_len) {
            return Err(DatasetError::RaggedInputs { values: inputs.len(), width: input_len });
        }
        let n = inputs.len() / input_len;
        if targets.len() != n * target_len {
            return Err(DatasetError::CountMismatch { inputs: n, targets: targets.len() / target_len.max(1) });
        }
        Ok(Dataset { inputs, input_len, targets, target_len })
    }

    /// A data set for a network with several inputs or outputs, from one array per
    /// input and one per output's targets, in declared order (Keras's
    /// `fit(x=[a, b], y=[u, v])`). Each input array holds a whole number of samples of
    /// its shape, the same number in all; each target array that number of targets of
    /// one width. A sample of the data set is its inputs one after the other, its
    /// target the targets one after the other, as the network as a `Layer` and
    /// [`Losses`](crate::multi::Losses) read them.
    ///
    /// ```
    /// # use nn_core::prelude::*;
    /// # use nn_core::train::DatasetError;
    /// network! {
    ///     pub struct Two: ([2], [1]) -> ([1], [2]) graph {
    ///         input a, b;
    ///         h = concat(a, b);
    ///         u = fc(h): Dense { units: 1 };
    ///         v = fc2(h): Dense { units: 2 };
    ///         output u, v;
    ///     }
    /// }
    /// let data = Dataset::multi::<Two>((&[1.0, 2.0, 3.0, 4.0], &[5.0, 6.0]), (&[0.0, 1.0], &[7.0, 8.0, 9.0, 10.0])).unwrap();
    /// assert_eq!((data.len(), data.input(1), data.target(1)), (2, &[3.0, 4.0, 6.0][..], &[1.0, 9.0, 10.0][..]));
    /// let err = Dataset::multi::<Two>((&[1.0, 2.0, 3.0, 4.0], &[5.0]), (&[0.0, 1.0], &[7.0, 8.0, 9.0, 10.0]));
    /// assert_eq!(err, Err(DatasetError::InputsDiffer { input: 1, expected: 2, found: 1 }));
    /// ```
    pub fn multi<L: MultiIo>(
        inputs: <L::Inputs as ShapeTuple>::Slices<'_>,
        targets: <L::Outputs as ShapeTuple>::Slices<'_>,
    ) -> Result<Dataset, DatasetError> {
        let in_lens = <L::Inputs as ShapeTuple>::LENS;
        let mut parts: [&[f32]; MAX_PARTS] = [&[]; MAX_PARTS];
        let parts = &mut parts[..in_lens.len()];
        <L::Inputs as ShapeTuple>::slices(inputs, parts);
        let n = samples_of(parts, in_lens).map_err(|e| match e {
            InputsError::Length { error, .. } => {
                DatasetError::RaggedInputs { values: error.found, width: error.sample }
            }
            InputsError::Samples { input, expected, found } => DatasetError::InputsDiffer { input, expected, found },
        })?;
        let mut x = alloc::vec![0.0; n * <L::Inputs as ShapeTuple>::LEN];
        interleave(parts, in_lens, &mut x);
        let mut target_parts: [&[f32]; MAX_PARTS] = [&[]; MAX_PARTS];
        let target_parts = &mut target_parts[..<L::Outputs as ShapeTuple>::LENS.len()];
        <L::Outputs as ShapeTuple>::slices(targets, target_parts);
        let mut widths = [0usize; MAX_PARTS];
        for (width, part) in widths.iter_mut().zip(target_parts.iter()) {
            if n == 0 || part.is_empty() {
                return Err(DatasetError::ZeroWidth);
            }
            if part.len() % n != 0 {
                return Err(DatasetError::CountMismatch { inputs: n, targets: part.len() });
            }
            *width = part.len() / n;
        }
        let widths = &widths[..target_parts.len()];
        let t_len = widths.iter().sum();
        let mut t = alloc::vec![0.0; n * t_len];
        interleave(target_parts, widths, &mut t);
        Dataset::new(x, <L::Inputs as ShapeTuple>::LEN, t, t_len)
    }

    /// The number of samples.
    pub fn len(&self) -> usize {
        self.inputs.len() / self.input_len
    }

    /// Whether there are no samples.
    pub fn is_empty(&self) -> bool {
        self.inputs.is_empty()
    }

    /// Floats per input sample.
    pub fn input_len(&self) -> usize {
        self.input_len
    }

    /// Floats per target.
    pub fn target_len(&self) -> usize {
        self.target_len
    }

    /// All inputs, contiguous.
    pub fn inputs(&self) -> &[f32] {
        &self.inputs
    }

    /// All targets, contiguous.
    pub fn targets(&self) -> &[f32] {
        &self.targets
    }

    /// All inputs, mutable (for normalisation in place).
    pub fn inputs_mut(&mut self) -> &mut [f32] {
        &mut self.inputs
    }

    /// Sample `i`'s input.
    pub fn input(&self, i: usize) -> &[f32] {
        &self.inputs[i * self.input_len..(i + 1) * self.input_len]
    }

    /// Sample `i`'s target.
    pub fn target(&self, i: usize) -> &[f32] {
        &self.targets[i * self.target_len..(i + 1) * self.target_len]
    }

    /// The samples at `indices`, in that order.
    pub fn select(&self, indices: &[usize]) -> Dataset {
        let mut inputs = Vec::with_capacity(indices.len() * self.input_len);
        let mut targets = Vec::with_capacity(indices.len() * self.target_len);
        for &i in indices {
            inputs.extend_from_slice(self.input(i));
            targets.extend_from_slice(self.target(i));
        }
        Dataset { inputs, input_len: self.input_len, targets, target_len: self.target_len }
    }

    /// The samples for which `keep(input, target)` holds.
    pub fn filter(&self, mut keep: impl FnMut(&[f32], &[f32]) -> bool) -> Dataset {
        let indices: Vec<usize> = (0..self.len()).filter(|&i| keep(self.input(i), self.target(i))).collect();
        self.select(&indices)
    }

    /// A seeded random split: `(train, test)` with `test_fraction` of the samples
    /// (rounded) in the test part.
    pub fn split(&self, test_fraction: f32, seed: u64) -> (Dataset, Dataset) {
        let mut indices: Vec<usize> = (0..self.len()).collect();
        Rng::new(seed).shuffle(&mut indices);
        let n_test = libm::roundf(self.len() as f32 * test_fraction.clamp(0.0, 1.0)) as usize;
        let (test, train) = indices.split_at(n_test);
        (self.select(train), self.select(test))
    }

    /// Applies `f` to every target value (relabelling, scaling).
    pub fn map_targets(&mut self, f: impl FnMut(&mut f32)) {
        self.targets.iter_mut().for_each(f);
    }

    /// Per-feature mean and standard deviation of the inputs (population form; a
    /// constant feature gets deviation 1 so that it maps to 0).
    pub fn feature_stats(&self) -> (Vec<f32>, Vec<f32>) {
        let n = self.len().max(1) as f64;
        let mut mean = alloc::vec![0.0f64; self.input_len];
        let mut var = alloc::vec![0.0f64; self.input_len];
        for row in self.inputs.chunks_exact(self.input_len) {
            for (m, &v) in mean.iter_mut().zip(row) {
                *m += v as f64;
            }
        }
        mean.iter_mut().for_each(|m| *m /= n);
        for row in self.inputs.chunks_exact(self.input_len) {
            for ((s, &v), m) in var.iter_mut().zip(row).zip(&mean) {
                *s += (v as f64 - m) * (v as f64 - m);
            }
        }
        let std = var
            .iter()
            .map(|s| {
                let sd = libm::sqrt(s / n);
                if sd > 1e-12 {
                    sd as f32
                } else {
                    1.0
                }
            })
            .collect();
        (mean.into_iter().map(|m| m as f32).collect(), std)
    }

    /// Standardises every input feature: `(x - mean) / std`, with statistics usually
    /// taken from the training set by [`Dataset::feature_stats`].
    pub fn standardize(&mut self, mean: &[f32], std: &[f32]) {
        let w = self.input_len;
        for row in self.inputs.chunks_exact_mut(w) {
            for ((v, m), s) in row.iter_mut().zip(mean).zip(std) {
                *v = (*v - m) / s;
            }
        }
    }

    /// Scales every input value by `factor` (e.g. pixels 0..16 to 0..1).
    pub fn scale_inputs(&mut self, factor: f32) {
        self.inputs.iter_mut().for_each(|v| *v *= factor);
    }
}
