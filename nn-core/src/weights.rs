//! Weights baked in at compile time.
//!
//! [`include_weights!`](crate::include_weights) reads a safetensors file while the
//! crate compiles and evaluates, in `const` context, the model's state array from it:
//!
//! ```ignore
//! use nn_core::prelude::*;
//!
//! network! {
//!     pub struct Net: [64] -> [10] {
//!         fc1: Dense { units: 32, activation: Relu },
//!         out: Dense { units: 10 },
//!     }
//! }
//!
//! // In flash: parameters then buffers, in `state_dict` order.
//! static WEIGHTS: [f32; Net::STATE_LEN] = nn_core::include_weights!(Net, "weights/net.safetensors");
//! static MODEL: Model<Net, &[f32]> = Model::from_static(Net, &WEIGHTS);
//! ```
//!
//! The path is relative to the directory of the crate's `Cargo.toml`. The macro reads
//! the file with the parser and default rules of `io::load_safetensors` (the
//! `nn-safetensors` crate): a corrupt header, a tensor that is not `F32` or a NaN or
//! infinite value is a compile error. It emits the file's tensors (names, shapes and
//! `f32` bits) as a constant [`WeightsFile`]; [`bake`] then walks the network's
//! compile-time description of its tensors ([`Layer::TENSORS`], a [`TensorTree`]) and
//! copies every tensor to its offset. A file that does not fit the network stops the
//! build with a message naming the tensor: a tensor of the network the file lacks, a
//! tensor whose shape differs, or a tensor of the file the network does not have. Only
//! the baked array reaches the binary; the file's constant is used at compile time
//! only.
use crate::layer::Layer;

/// The compile-time description of a layer's parameter and buffer tensors, in
/// `state_dict` order: the same names, shapes and order as
/// [`Layer::visit_tensors`], as a `const` value.
///
/// Trainable tensors are laid out one after the other in the parameter array and
/// the others in the buffer array, in the order of the tree.
#[derive(Clone, Copy, Debug)]
pub enum TensorTree {
    /// No tensors.
    Empty,
    /// One tensor.
    Leaf {
        /// Its last name component (`weight`).
        name: &'static str,
        /// Its shape (PyTorch's layout).
        shape: &'static [usize],
        /// `true` for parameters, `false` for buffers.
        trainable: bool,
    },
    /// The tensors of `inner`, named `name.…`.
    Scope {
        /// The prefix.
        name: &'static str,
        /// The tensors under it.
        inner: &'static TensorTree,
    },
    /// The tensors of `first`, then those of `rest`.
    Pair {
        /// The first tensors.
        first: &'static TensorTree,
        /// The following tensors.
        rest: &'static TensorTree,
    },
    /// `count` copies of `inner`, named `name.0.…` to `name.{count - 1}.…`.
    Repeat {
        /// The prefix.
        name: &'static str,
        /// The number of copies.
        count: usize,
        /// One copy.
        inner: &'static TensorTree,
    },
    /// The tensors of a recurrent layer as PyTorch names them: for each layer `l` and
    /// direction, `weight_ih_l{l}` `[gate_width, in]`, `weight_hh_l{l}`
    /// `[gate_width, hidden]`, `bias_ih_l{l}` and `bias_hh_l{l}` `[gate_width]`, with
    /// `_reverse` after the backward direction's names.
    Recurrent {
        /// Gates times hidden units.
        gate_width: usize,
        /// The input width of the first layer.
        features: usize,
        /// The hidden units.
        hidden: usize,
        /// Stacked layers.
        layers: usize,
        /// 1, or 2 for a bidirectional layer.
        directions: usize,
    },
    /// A layer with parameters that does not describe them at compile time (the
    /// default for layers written outside this crate).
    Unknown {
        /// The layer kind.
        kind: &'static str,
    },
}

impl TensorTree {
    /// The number of tensors.
    pub const fn count(&self) -> usize {
        match *self {
            TensorTree::Empty | TensorTree::Unknown { .. } => 0,
            TensorTree::Leaf { .. } => 1,
            TensorTree::Scope { inner, .. } => inner.count(),
            TensorTree::Pair { first, rest } => first.count() + rest.count(),
            TensorTree::Repeat { count, inner, .. } => count * inner.count(),
            TensorTree::Recurrent { layers, directions, .. } => 4 * layers * directions,
        }
    }

    /// The first layer kind without a compile-time description, if any.
    pub const fn unknown(&self) -> Option<&'static str> {
        match *self {
            TensorTree::Unknown { kind } => Some(kind),
            TensorTree::Scope { inner, .. } | TensorTree::Repeat { inner, .. } => inner.unknown(),
            TensorTree::Pair { first, rest } => match first.unknown() {
                Some(kind) => Some(kind),
                None => rest.unknown(),
            },
            _ => None,
        }
    }

    /// The `index`-th tensor in `state_dict` order, its dotted name written into a
    /// fixed buffer.
    pub const fn tensor(&self, index: usize) -> Option<TensorEntry> {
        let mut entry = TensorEntry::EMPTY;
        if self.find(index, &mut entry) {
            Some(entry)
        } else {
            None
        }
    }

    /// Writes the `index`-th tensor (counted from this subtree's first) into `entry`,
    /// whose name already holds the enclosing prefix.
    const fn find(&self, index: usize, entry: &mut TensorEntry) -> bool {
        match *self {
            TensorTree::Empty | TensorTree::Unknown { .. } => false,
            TensorTree::Leaf { name, shape, trainable } => {
                if index != 0 {
                    return false;
                }
                entry.name.push_str(name);
                entry.trainable = trainable;
                entry.rank = shape.len();
                let mut i = 0;
                while i < shape.len() && i < MAX_RANK {
                    entry.shape[i] = shape[i];
                    i += 1;
                }
                true
            }
            TensorTree::Scope { name, inner } => {
                if index >= inner.count() {
                    return false;
                }
                entry.name.push_str(name);
                entry.name.push_str(".");
                inner.find(index, entry)
            }
            TensorTree::Pair { first, rest } => {
                let n = first.count();
                if index < n {
                    first.find(index, entry)
                } else {
                    rest.find(index - n, entry)
                }
            }
            TensorTree::Repeat { name, count, inner } => {
                let per = inner.count();
                if per == 0 || index >= count * per {
                    return false;
                }
                entry.name.push_str(name);
                entry.name.push_str(".");
                entry.name.push_usize(index / per);
                entry.name.push_str(".");
                inner.find(index % per, entry)
            }
            TensorTree::Recurrent { gate_width, features, hidden, layers, directions } => {
                if index >= 4 * layers * directions {
                    return false;
                }
                let layer = index / (4 * directions);
                let direction = index / 4 % directions;
                let which = index % 4;
                let input = if layer == 0 { features } else { directions * hidden };
                entry.name.push_str(match which {
                    0 => "weight_ih_l",
                    1 => "weight_hh_l",
                    2 => "bias_ih_l",
                    _ => "bias_hh_l",
                });
                entry.name.push_usize(layer);
                if direction == 1 {
                    entry.name.push_str("_reverse");
                }
                entry.trainable = true;
                entry.shape[0] = gate_width;
                entry.shape[1] = match which {
                    0 => input,
                    _ => hidden,
                };
                entry.rank = if which < 2 { 2 } else { 1 };
                true
            }
        }
    }
}

/// The largest tensor rank a [`TensorEntry`] holds.
pub const MAX_RANK: usize = 6;

/// One tensor of a [`TensorTree`], as `const` data.
#[derive(Clone, Copy, Debug)]
pub struct TensorEntry {
    /// The dotted name.
    pub name: Text,
    /// The first `rank` values are the shape.
    pub shape: [usize; MAX_RANK],
    /// The number of dimensions.
    pub rank: usize,
    /// `true` for parameters, `false` for buffers.
    pub trainable: bool,
}

impl TensorEntry {
    const EMPTY: TensorEntry = TensorEntry { name: Text::new(), shape: [0; MAX_RANK], rank: 0, trainable: false };

    /// The number of elements.
    pub const fn len(&self) -> usize {
        let mut n = 1;
        let mut i = 0;
        while i < self.rank {
            n *= self.shape[i];
            i += 1;
        }
        n
    }

    /// Whether the tensor has no elements.
    pub const fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the shape equals `shape`.
    pub const fn shape_is(&self, shape: &[usize]) -> bool {
        if shape.len() != self.rank {
            return false;
        }
        let mut i = 0;
        while i < self.rank {
            if self.shape[i] != shape[i] {
                return false;
            }
            i += 1;
        }
        true
    }
}

/// A short string built in `const` context: tensor names and error messages.
#[derive(Clone, Copy, Debug)]
pub struct Text {
    bytes: [u8; 256],
    len: usize,
}

impl Text {
    /// The empty string.
    pub const fn new() -> Self {
        Text { bytes: [0; 256], len: 0 }
    }

    /// Appends `s`, truncating at the capacity (256 bytes).
    pub const fn push_str(&mut self, s: &str) {
        let b = s.as_bytes();
        let mut i = 0;
        while i < b.len() && self.len < self.bytes.len() {
            self.bytes[self.len] = b[i];
            self.len += 1;
            i += 1;
        }
    }

    /// Appends `n` in decimal.
    pub const fn push_usize(&mut self, n: usize) {
        let mut digits = [0u8; 20];
        let mut k = 0;
        let mut m = n;
        loop {
            digits[k] = b'0' + (m % 10) as u8;
            k += 1;
            m /= 10;
            if m == 0 {
                break;
            }
        }
        while k > 0 && self.len < self.bytes.len() {
            k -= 1;
            self.bytes[self.len] = digits[k];
            self.len += 1;
        }
    }

    /// Appends `[a, b, c]`.
    pub const fn push_shape(&mut self, shape: &[usize]) {
        self.push_str("[");
        let mut i = 0;
        while i < shape.len() {
            if i > 0 {
                self.push_str(", ");
            }
            self.push_usize(shape[i]);
            i += 1;
        }
        self.push_str("]");
    }

    /// The string (cut before the first byte of a character truncated by the
    /// capacity).
    pub const fn as_str(&self) -> &str {
        let mut len = self.len;
        loop {
            if let Ok(s) = core::str::from_utf8(self.bytes.split_at(len).0) {
                return s;
            }
            len -= 1;
        }
    }

    /// Whether the string equals `other`.
    pub const fn eq_str(&self, other: &str) -> bool {
        let b = other.as_bytes();
        if b.len() != self.len {
            return false;
        }
        let mut i = 0;
        while i < b.len() {
            if b[i] != self.bytes[i] {
                return false;
            }
            i += 1;
        }
        true
    }
}

impl Default for Text {
    fn default() -> Self {
        Text::new()
    }
}

/// A safetensors file read at compile time by
/// [`include_weights!`](crate::include_weights).
#[derive(Clone, Copy, Debug)]
pub struct WeightsFile {
    /// The path as written in the macro call.
    pub path: &'static str,
    /// Its tensors, in the file's order.
    pub tensors: &'static [FileTensor],
    /// The values of every tensor, one after the other, as `f32` bits.
    pub data: &'static [u32],
}

/// One tensor of a [`WeightsFile`].
#[derive(Clone, Copy, Debug)]
pub struct FileTensor {
    /// Its name.
    pub name: &'static str,
    /// Its shape.
    pub shape: &'static [usize],
    /// Its first value in [`WeightsFile::data`].
    pub offset: usize,
}

impl WeightsFile {
    /// The index of the tensor named like `name`.
    const fn position(&self, name: &Text) -> Option<usize> {
        let mut i = 0;
        while i < self.tensors.len() {
            if name.eq_str(self.tensors[i].name) {
                return Some(i);
            }
            i += 1;
        }
        None
    }
}

/// Panics, at compile time when evaluated in a constant, unless `file` holds exactly
/// the tensors of `L` with their shapes; the message names the first tensor at fault.
pub const fn check<L: Layer>(file: &WeightsFile) {
    let tree = L::TENSORS;
    if let Some(kind) = tree.unknown() {
        let mut msg = intro::<L>(file);
        msg.push_str("a layer of kind `");
        msg.push_str(kind);
        msg.push_str("` does not describe its tensors at compile time (`Layer::TENSORS`)");
        panic!("{}", msg.as_str());
    }
    let n = tree.count();
    let mut k = 0;
    while k < n {
        let Some(entry) = tree.tensor(k) else { panic!("a layer's tensor description is inconsistent") };
        match file.position(&entry.name) {
            None => {
                let mut msg = intro::<L>(file);
                msg.push_str("tensor `");
                msg.push_str(entry.name.as_str());
                msg.push_str("` ");
                msg.push_shape(entry.shape.split_at(entry.rank).0);
                msg.push_str(" is missing from the file");
                panic!("{}", msg.as_str());
            }
            Some(i) => {
                let found = file.tensors[i].shape;
                if !entry.shape_is(found) {
                    let mut msg = intro::<L>(file);
                    msg.push_str("tensor `");
                    msg.push_str(entry.name.as_str());
                    msg.push_str("` has shape ");
                    msg.push_shape(found);
                    msg.push_str(" in the file, but ");
                    msg.push_shape(entry.shape.split_at(entry.rank).0);
                    msg.push_str(" in the network");
                    panic!("{}", msg.as_str());
                }
            }
        }
        k += 1;
    }
    // Every tensor of the network is in the file with its shape; so the file has one
    // more only if it has more tensors.
    let mut i = 0;
    while i < file.tensors.len() {
        let name = file.tensors[i].name;
        let mut k = 0;
        let mut known = false;
        while k < n && !known {
            if let Some(entry) = tree.tensor(k) {
                known = entry.name.eq_str(name);
            }
            k += 1;
        }
        if !known {
            let mut msg = intro::<L>(file);
            msg.push_str("the file's tensor `");
            msg.push_str(name);
            msg.push_str("` ");
            msg.push_shape(file.tensors[i].shape);
            msg.push_str(" is not a tensor of the network");
            panic!("{}", msg.as_str());
        }
        i += 1;
    }
}

/// `weights file `path` does not fit `Net`: `.
const fn intro<L: Layer>(file: &WeightsFile) -> Text {
    let mut msg = Text::new();
    msg.push_str("weights file `");
    msg.push_str(file.path);
    msg.push_str("` does not fit `");
    msg.push_str(L::KIND);
    msg.push_str("`: ");
    msg
}

/// The state array of `L` (parameters, then buffers, in `state_dict` order) from
/// `file`, checked by [`check`]. `N` must be `L::PARAMS + L::BUFFERS`.
pub const fn bake<L: Layer, const N: usize>(file: &WeightsFile) -> [f32; N] {
    check::<L>(file);
    assert!(N == L::PARAMS + L::BUFFERS, "the state array's length is not `PARAMS + BUFFERS`");
    let tree = L::TENSORS;
    let mut out = [0.0f32; N];
    let mut params_at = 0;
    let mut buffers_at = L::PARAMS;
    let n = tree.count();
    let mut k = 0;
    while k < n {
        let Some(entry) = tree.tensor(k) else { panic!("a layer's tensor description is inconsistent") };
        let Some(i) = file.position(&entry.name) else { panic!("checked above") };
        let len = entry.len();
        let at = if entry.trainable { params_at } else { buffers_at };
        assert!(at + len <= N, "a layer's tensor description does not match its `PARAMS` and `BUFFERS`");
        let from = file.tensors[i].offset;
        let mut j = 0;
        while j < len {
            out[at + j] = f32::from_bits(file.data[from + j]);
            j += 1;
        }
        if entry.trainable {
            params_at += len;
        } else {
            buffers_at += len;
        }
        k += 1;
    }
    assert!(
        params_at == L::PARAMS && buffers_at == N,
        "a layer's tensor description does not match its `PARAMS` and `BUFFERS`"
    );
    out
}
