//! How an ONNX tensor relates to a value of the generated network.
//!
//! A network value holds one sample (no batch axis) in row-major order. An ONNX
//! tensor of the graph is that value with a batch axis inserted somewhere and its
//! sample axes possibly split, merged or permuted: a `Transpose`, `Reshape`,
//! `Flatten`, `Squeeze` or `Unsqueeze` only changes this bookkeeping and emits no
//! layer. A layer that reads the tensor as a sample of a given shape then needs the
//! sample axes in their stored order (`perm` the identity), and gets a `Reshape` or
//! `Flatten` only when the stored shape differs.

/// An ONNX tensor as a view of a network value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Layout {
    /// The ONNX shape, batch axis included.
    pub shape: Vec<usize>,
    /// The index of the batch axis in `shape`.
    pub batch: usize,
    /// The sample axes (those of `shape` without `batch`, numbered from 0) in the
    /// order the network value stores them: the value is
    /// `transpose(sample, perm)` flattened row-major.
    pub perm: Vec<usize>,
}

impl Layout {
    /// A tensor whose batch axis is `batch` and whose sample axes are stored in order.
    pub(crate) fn plain(shape: Vec<usize>, batch: usize) -> Layout {
        let rank = shape.len().saturating_sub(1);
        Layout { shape, batch, perm: (0..rank).collect() }
    }

    /// The shape of one sample, in ONNX's axis order.
    pub(crate) fn sample(&self) -> Vec<usize> {
        self.shape.iter().enumerate().filter(|&(i, _)| i != self.batch).map(|(_, &d)| d).collect()
    }

    /// Whether the sample axes are stored in ONNX's order.
    pub(crate) fn in_order(&self) -> bool {
        self.perm.iter().enumerate().all(|(i, &p)| i == p)
    }

    /// The layout after ONNX `Transpose` with `perm` (output axis `j` is input axis
    /// `perm[j]`); `None` if `perm` is not a permutation of the axes.
    pub(crate) fn transposed(&self, perm: &[usize]) -> Option<Layout> {
        let rank = self.shape.len();
        let mut seen = vec![false; rank];
        for &p in perm {
            if p >= rank || std::mem::replace(&mut seen[p], true) {
                return None;
            }
        }
        if perm.len() != rank {
            return None;
        }
        let shape = perm.iter().map(|&p| self.shape[p]).collect();
        let batch = perm.iter().position(|&p| p == self.batch)?;
        // The old sample index of each new sample axis.
        let old_index = |axis: usize| axis - usize::from(axis > self.batch);
        let new_sample: Vec<usize> =
            perm.iter().enumerate().filter(|&(j, _)| j != batch).map(|(_, &p)| old_index(p)).collect();
        let new_perm = self.perm.iter().map(|old| new_sample.iter().position(|s| s == old)).collect::<Option<_>>()?;
        Some(Layout { shape, batch, perm: new_perm })
    }

    /// The layout after reshaping to `shape` (fully resolved), or why the library
    /// cannot follow it: the batch axis must stay an axis of its own with the same
    /// number of elements before it, and the sample axes must be in order.
    pub(crate) fn reshaped(&self, shape: &[usize]) -> Result<Layout, String> {
        if !self.in_order() {
            return Err(String::from(
                "it reshapes a tensor whose axes an earlier `Transpose` reordered; the library has no layer that \
                 permutes a sample's axes",
            ));
        }
        let before: usize = self.shape[..self.batch].iter().product();
        let batch_size = self.shape[self.batch];
        let mut product = 1usize;
        for (axis, &d) in shape.iter().enumerate() {
            if product == before && d == batch_size {
                return Ok(Layout::plain(shape.to_vec(), axis));
            }
            product = product.saturating_mul(d);
        }
        Err(format!(
            "the batch axis (size {batch_size}, axis {} of {:?}) does not stay an axis of its own in {shape:?}",
            self.batch, self.shape
        ))
    }
}

/// Element count of a shape.
pub(crate) fn elements(shape: &[usize]) -> usize {
    shape.iter().product()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lstm_output_of_a_batch_first_model_is_a_plain_sequence() {
        // Y [seq 5, dirs 2, batch 3, hidden 4] -> Transpose(0, 2, 1, 3) -> Reshape
        // [5, 3, 8] -> Transpose(1, 0, 2): [3, 5, 8], the batch first and the two
        // directions concatenated per step.
        let y = Layout::plain(vec![5, 2, 3, 4], 2);
        let t = y.transposed(&[0, 2, 1, 3]).unwrap();
        assert_eq!((t.batch, t.in_order()), (1, true));
        let r = t.reshaped(&[5, 3, 8]).unwrap();
        assert_eq!(r.batch, 1);
        let out = r.transposed(&[1, 0, 2]).unwrap();
        assert_eq!(out, Layout::plain(vec![3, 5, 8], 0));
    }

    #[test]
    fn a_time_major_transpose_is_tracked_not_applied() {
        let x = Layout::plain(vec![3, 5, 8], 0);
        let t = x.transposed(&[1, 0, 2]).unwrap();
        assert_eq!((t.batch, t.sample(), t.in_order()), (1, vec![5, 8], true));
        let image = Layout::plain(vec![2, 3, 4, 5], 0);
        let swapped = image.transposed(&[0, 1, 3, 2]).unwrap();
        assert!(!swapped.in_order());
        assert_eq!(swapped.transposed(&[0, 1, 3, 2]).unwrap(), image);
        assert!(swapped.reshaped(&[2, 60]).is_err());
    }

    #[test]
    fn a_reshape_must_keep_the_batch_axis() {
        let x = Layout::plain(vec![4, 6], 0);
        assert_eq!(x.reshaped(&[4, 2, 3]).unwrap(), Layout::plain(vec![4, 2, 3], 0));
        assert!(x.reshaped(&[24]).is_err());
        assert!(x.reshaped(&[2, 12]).is_err());
    }
}
