//! Networks that contain themselves through networks of other `network!` invocations,
//! which the macro sees only as names.
//!
//! Each network that nests networks has a `static` [`Node`]: its name and, for each
//! layer that is a network, the layer's name and that network's node, reached through
//! [`crate::Layer::NODE`]. Statics may point at each other in a cycle, so the graph is
//! built whatever it holds; a constant of the network then walks it from the network
//! ([`contains_itself`]) and reports a cycle in the user's terms (``network `A` contains
//! itself: A -> b: B -> a: A``) before any of the networks' sizes, which would otherwise
//! be rustc's cycle error (E0391) through the library's constants.
//!
//! The node is reached through a raw pointer ([`NodeRef`]) rather than a reference:
//! rustc turns a constant holding a reference into a value of the type system by
//! reading what it points at, which reads the static and so every static of the
//! cycle, and would report their cycle instead.

/// A network in the graph of networks that contain each other.
pub struct Node {
    /// Tells networks apart: the module, the name and where the name is written.
    pub key: &'static str,
    /// The network's name.
    pub name: &'static str,
    /// Its layers that may be networks (all whose kind is a name the macro does not know).
    pub layers: &'static [Edge],
}

/// A layer of a network whose kind is a name: the layer's name and, when that kind is a
/// network written by `network!`, its node.
pub struct Edge {
    /// The layer's name.
    pub layer: &'static str,
    /// `Layer::NODE` of the layer's kind.
    pub network: Option<NodeRef>,
}

/// A pointer to a [`Node`] that no constant of the type system reads through (see the
/// module).
#[derive(Clone, Copy)]
pub struct NodeRef(*const Node);

// SAFETY: a `NodeRef` points at a `Node` that lives for the whole program and is never
// written (`NodeRef::new` takes a `&'static Node`, and `Node` has no interior
// mutability), so sharing it between threads is sharing a `&'static Node`, which is
// `Sync`.
unsafe impl Sync for NodeRef {}

impl NodeRef {
    /// A pointer to `node`.
    pub const fn new(node: &'static Node) -> Self {
        Self(node)
    }

    /// The node pointed at.
    pub const fn get(self) -> &'static Node {
        // SAFETY: the pointer comes from a `&'static Node` (`new` is the only way to
        // make a `NodeRef`), so it is valid, aligned and never written for the whole
        // program.
        unsafe { &*self.0 }
    }
}

/// The most networks (and the deepest nesting) [`contains_itself`] walks through; past
/// it, it stops looking (and a cycle is then rustc's E0391).
const MAX_NETWORKS: usize = 64;

/// The longest message of a [`Cycle`], in bytes; a longer path ends in `...`.
const MESSAGE_BYTES: usize = 400;

/// A cycle of networks found by [`contains_itself`].
pub struct Cycle {
    /// Which of the root's layers (index into [`Node::layers`]) starts the cycle.
    pub layer: usize,
    message: [u8; MESSAGE_BYTES],
    len: usize,
}

impl Cycle {
    /// ``network `A` contains itself: A -> b: B -> a: A``.
    pub const fn message(&self) -> &str {
        let (bytes, _) = self.message.split_at(self.len);
        match core::str::from_utf8(bytes) {
            Ok(message) => message,
            Err(_) => "network contains itself",
        }
    }

    /// Appends `part` whole if it fits with room for `...` after it, else `...` once.
    const fn push(&mut self, part: &str) {
        let part = part.as_bytes();
        let truncated = b"...";
        if self.len + part.len() + truncated.len() > MESSAGE_BYTES {
            if self.len + truncated.len() <= MESSAGE_BYTES && !self.ends_with(truncated) {
                self.append(truncated);
            }
            return;
        }
        self.append(part);
    }

    const fn ends_with(&self, tail: &[u8]) -> bool {
        if self.len < tail.len() {
            return false;
        }
        let mut i = 0;
        while i < tail.len() {
            if self.message[self.len - tail.len() + i] != tail[i] {
                return false;
            }
            i += 1;
        }
        true
    }

    const fn append(&mut self, bytes: &[u8]) {
        let mut i = 0;
        while i < bytes.len() {
            self.message[self.len] = bytes[i];
            self.len += 1;
            i += 1;
        }
    }
}

/// How `a` and `b` compare byte by byte: negative, zero or positive.
const fn compare(a: &str, b: &str) -> i32 {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut i = 0;
    while i < a.len() && i < b.len() {
        if a[i] != b[i] {
            return if a[i] < b[i] { -1 } else { 1 };
        }
        i += 1;
    }
    if a.len() < b.len() {
        -1
    } else if a.len() > b.len() {
        1
    } else {
        0
    }
}

/// A cycle of networks that leads from `root` back to it, if there is one.
///
/// With `least`, only a cycle whose other networks all have a greater key than `root`:
/// every cycle has exactly one network for which this finds it, so that each cycle is
/// reported once. The walk is depth-first over each network once, so that its cost is
/// the size of the graph, and it stops after `MAX_NETWORKS` (64) networks.
pub const fn contains_itself(root: &'static Node, least: bool) -> Option<Cycle> {
    let mut visited: [&'static str; MAX_NETWORKS] = [""; MAX_NETWORKS];
    let mut n_visited = 0;
    // The path from `root`: each network and how many of its layers have been walked.
    let mut path: [(&'static Node, usize); MAX_NETWORKS] = [(root, 0); MAX_NETWORKS];
    let mut depth = 1;
    while depth > 0 {
        let (node, walked) = path[depth - 1];
        if walked == node.layers.len() {
            depth -= 1;
            continue;
        }
        path[depth - 1].1 = walked + 1;
        let Some(next) = node.layers[walked].network else { continue };
        let next = next.get();
        let order = compare(next.key, root.key);
        if order == 0 {
            return Some(cycle(root, &path, depth));
        }
        if least && order < 0 {
            continue;
        }
        let mut seen = false;
        let mut i = 0;
        while i < n_visited {
            if compare(visited[i], next.key) == 0 {
                seen = true;
            }
            i += 1;
        }
        if seen || n_visited == MAX_NETWORKS || depth == MAX_NETWORKS {
            continue;
        }
        visited[n_visited] = next.key;
        n_visited += 1;
        path[depth] = (next, 0);
        depth += 1;
    }
    None
}

/// The cycle along the first `depth` networks of `path`, whose last walked layer is
/// `root`.
const fn cycle(root: &Node, path: &[(&'static Node, usize)], depth: usize) -> Cycle {
    let mut cycle = Cycle { layer: path[0].1 - 1, message: [0; MESSAGE_BYTES], len: 0 };
    cycle.push("network `");
    cycle.push(root.name);
    cycle.push("` contains itself: ");
    cycle.push(root.name);
    let mut i = 0;
    while i < depth {
        let (node, walked) = path[i];
        let edge = &node.layers[walked - 1];
        cycle.push(" -> ");
        cycle.push(edge.layer);
        cycle.push(": ");
        if let Some(network) = edge.network {
            cycle.push(network.get().name);
        }
        i += 1;
    }
    cycle
}

/// The sizes of a network that nests networks, read by its `Layer` impl through
/// [`sizes`] unless the network contains itself.
pub trait Sizes {
    /// `Layer::PARAMS`.
    const PARAMS: usize;
    /// `Layer::BUFFERS`.
    const BUFFERS: usize;
    /// `Layer::CACHE`.
    const CACHE: usize;
    /// `Layer::SCRATCH`.
    const SCRATCH: usize;
    /// `Layer::FORWARD_SCRATCH` (the trait's default unless given).
    const FORWARD_SCRATCH: usize = Self::SCRATCH;
    /// `Layer::TENSORS`, when given. A network whose `Layer::TENSORS` is the trait's
    /// default (one with several inputs or outputs) does not read it.
    const TENSORS: &'static crate::weights::TensorTree = &crate::weights::TensorTree::Empty;
}

/// The values of [`Sizes`].
#[derive(Clone, Copy)]
pub struct Totals {
    /// `Layer::PARAMS`.
    pub params: usize,
    /// `Layer::BUFFERS`.
    pub buffers: usize,
    /// `Layer::CACHE`.
    pub cache: usize,
    /// `Layer::SCRATCH`.
    pub scratch: usize,
    /// `Layer::FORWARD_SCRATCH`.
    pub forward_scratch: usize,
    /// `Layer::TENSORS`.
    pub tensors: &'static crate::weights::TensorTree,
}

impl Totals {
    /// The sizes of a network that contains itself, which has none: zeros, so that
    /// its one error is the cycle's.
    pub const CONTAINS_ITSELF: Self = Self {
        params: 0,
        buffers: 0,
        cache: 0,
        scratch: 0,
        forward_scratch: 0,
        tensors: &crate::weights::TensorTree::Empty,
    };
}

/// `S`'s sizes. A call rather than a constant: rustc evaluates the constants a
/// constant names before it runs it, also in a branch it does not take, and a call's
/// only when it is made, so that `if contains_itself { .. } else { sizes::<S>() }`
/// does not read the sizes of the networks of a cycle.
pub const fn sizes<S: Sizes>() -> Totals {
    Totals {
        params: S::PARAMS,
        buffers: S::BUFFERS,
        cache: S::CACHE,
        scratch: S::SCRATCH,
        forward_scratch: S::FORWARD_SCRATCH,
        tensors: S::TENSORS,
    }
}
