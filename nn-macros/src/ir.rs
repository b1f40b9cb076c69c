//! The intermediate representation: networks whose layers are resolved against the
//! kind table and whose shapes are inferred, every part still carrying its span. Both
//! forms of `network!` lower to a [`Graph`] of statements, which `expand` writes out.
use proc_macro2::{Literal, Span, TokenStream};
use quote::quote;
use syn::{Attribute, Ident, Path, Visibility};

use crate::kinds::{Activation, Args, Kind};

/// One `struct Name: [in] -> [out] { ... }`.
pub(crate) struct Network {
    pub attrs: Vec<Attribute>,
    pub vis: Visibility,
    pub name: Ident,
    /// `None` when the signature did not parse.
    pub input: Option<DeclaredShape>,
    pub output: Option<DeclaredShape>,
    pub layers: Vec<Layer>,
}

/// A shape written by the user: the network's input and output, or a `=> [..]`
/// assertion.
pub(crate) struct DeclaredShape {
    pub span: Span,
    /// The dimensions, `None` if they are not a valid shape (already reported).
    pub dims: Option<Vec<usize>>,
}

/// One layer of a network.
pub(crate) struct Layer {
    pub name: Ident,
    /// The kind as written: `Dense` or a network's path.
    pub kind: Path,
    pub op: Op,
    /// What produces this layer's input.
    pub source: Source,
    pub input: ShapeInfo,
    pub output: ShapeInfo,
    pub assertion: Option<DeclaredShape>,
}

/// A network lowered: named values computed by statements. The graph form lowers to
/// it statement by statement, the sequential form to one statement per layer, each
/// applying its layer to the value before it.
pub(crate) struct Graph {
    /// Name, attributes and declared shapes (`layers` is empty).
    pub net: Network,
    pub values: Vec<ValueInfo>,
    pub layers: Vec<GraphLayer>,
    pub nodes: Vec<Node>,
    /// The values that are the network's inputs and outputs, in declared order.
    pub inputs: Vec<usize>,
    pub outputs: Vec<usize>,
    /// The declared input and output shapes (`None` if invalid, already reported).
    pub input_shapes: Vec<Option<Vec<usize>>>,
    pub output_shapes: Vec<Option<Vec<usize>>>,
    /// Shape equalities left to the type system: (span, actual, expected, message, label).
    pub type_checks: Vec<(Span, TokenStream, TokenStream, String, String)>,
    /// As `type_checks`, for the initial state of a recurrent layer, where `[units]`
    /// also fits `[1, units]`.
    pub state_checks: Vec<(Span, TokenStream, TokenStream, String, String)>,
}

/// What the graph form's statements tell the validation beyond the [`Graph`]: where
/// the body is, whether it has an `input` and an `output` statement, the names in the
/// `output` statement (one per entry of [`Graph::outputs`], spanned where written)
/// and whether an earlier error makes unused values an unreliable diagnosis.
pub(crate) struct Statements {
    pub body: Span,
    pub saw_input: bool,
    pub saw_output: bool,
    pub output_names: Vec<Ident>,
    /// Per entry of `output_names`, its position in the `output` statement (the
    /// declared shape it is checked against).
    pub output_slots: Vec<usize>,
    /// The spans of the declared output shapes, in order.
    pub output_spans: Vec<Span>,
    /// Unused values are not reported (after a statement that did not parse, a name
    /// that did not resolve, or an `input`/`output` statement of the wrong length).
    pub quiet: bool,
    /// A statement did not parse (already reported).
    pub recovering: bool,
}

pub(crate) struct ValueInfo {
    pub name: Ident,
    pub shape: ShapeInfo,
    pub input: bool,
    pub uses: usize,
}

pub(crate) enum GraphLayer {
    /// A layer of the sequential form's kinds, or a network used as a layer.
    Plain(Layer),
    /// A dense layer using the transpose of layer `target`'s weight.
    Tied { name: Ident, target: usize, inputs: usize, outputs: usize, activation: Activation, bias: bool },
}

impl GraphLayer {
    pub(crate) fn name(&self) -> &Ident {
        match self {
            GraphLayer::Plain(l) => &l.name,
            GraphLayer::Tied { name, .. } => name,
        }
    }
}

pub(crate) struct Node {
    pub op: NodeOp,
    pub args: Vec<usize>,
    pub out: usize,
    /// The values a recurrent layer writes its final state into: none, `h`, or `h`
    /// and `c` (`(y, h, c) = lstm(x)`).
    pub states: Vec<usize>,
}

pub(crate) enum NodeOp {
    Apply(usize),
    Add,
    /// `a - b`, of two values.
    Subtract,
    Multiply,
    /// Per operand, the floats of one block (see `nn_core::graph::concat`).
    Concat(Vec<usize>),
}

impl Graph {
    /// The layers in order when the graph is a sequence: one input and one output,
    /// the `n`-th statement applying the `n`-th layer (a layer of the sequential
    /// form's kinds or a network) to the value before it, each value used once.
    pub(crate) fn sequence(&self) -> Option<Vec<&Layer>> {
        if self.inputs.len() != 1 || self.outputs.len() != 1 || self.nodes.is_empty() {
            return None;
        }
        let mut at = self.inputs[0];
        let mut layers = Vec::with_capacity(self.nodes.len());
        for (n, node) in self.nodes.iter().enumerate() {
            let (NodeOp::Apply(k), Some(GraphLayer::Plain(layer))) = (&node.op, self.layers.get(n)) else {
                return None;
            };
            if *k != n || node.args != [at] || self.values[at].uses != 1 || !node.states.is_empty() {
                return None;
            }
            layers.push(layer);
            at = node.out;
        }
        (self.outputs[0] == at).then_some(layers)
    }
}

/// What a layer is.
pub(crate) enum Op {
    /// A built-in kind with its resolved options.
    Builtin { kind: &'static Kind, args: Args },
    /// A network (any type implementing `nn_core::Layer`) used as a layer: the macro
    /// sees only its path, so its shapes are checked by the type system.
    Network,
    /// A kind that could not be resolved (already reported).
    Invalid,
}

/// What the macro knows about a shape.
#[derive(Clone)]
pub(crate) enum ShapeInfo {
    /// Literal dimensions.
    Known(Vec<usize>),
    /// Only a type: the output of a network used as a layer,
    /// `<Encoder as ::nn_core::Layer>::Output`.
    Opaque(TokenStream),
    /// Not known because of an earlier error.
    Unknown,
}

/// What feeds a layer: the previous layer or the network's input.
#[derive(Clone)]
pub(crate) enum Source {
    Input(Ident),
    Layer(Ident),
}

impl Source {
    /// "`fc1` produces [32]" or "the input of `Net` is [32]".
    pub(crate) fn produces(&self, shape: &str) -> String {
        match self {
            Source::Input(net) => format!("the input of `{}` is {shape}", unraw(net)),
            Source::Layer(layer) => format!("`{}` produces {shape}", unraw(layer)),
        }
    }
}

/// An identifier as the user means it: `type` for `r#type`.
pub(crate) fn unraw(ident: &Ident) -> String {
    syn::ext::IdentExt::unraw(ident).to_string()
}

impl ShapeInfo {
    /// The shape as a type: `::nn_core::Shape2<4, 8>`.
    pub(crate) fn ty(&self) -> TokenStream {
        match self {
            ShapeInfo::Known(dims) => shape_type(dims),
            ShapeInfo::Opaque(ty) => ty.clone(),
            ShapeInfo::Unknown => shape_type(&[1]),
        }
    }

    /// The number of elements as a const generic argument.
    pub(crate) fn len(&self) -> TokenStream {
        match self {
            ShapeInfo::Known(dims) => {
                let len = Literal::usize_unsuffixed(element_count(dims));
                quote!(#len)
            }
            ShapeInfo::Opaque(ty) => quote!({ <#ty as ::nn_core::Shape>::LEN }),
            ShapeInfo::Unknown => quote!(1),
        }
    }
}

/// `::nn_core::Shape1<64>`, `Shape2<A, B>` or `Shape3<A, B, C>`. Shapes of other
/// ranks are rejected before expansion; they map to a vector of the same length.
pub(crate) fn shape_type(dims: &[usize]) -> TokenStream {
    let lit = |d: usize| Literal::usize_unsuffixed(d);
    match *dims {
        [a, b] => {
            let (a, b) = (lit(a), lit(b));
            quote!(::nn_core::Shape2<#a, #b>)
        }
        [a, b, c] => {
            let (a, b, c) = (lit(a), lit(b), lit(c));
            quote!(::nn_core::Shape3<#a, #b, #c>)
        }
        _ => {
            let len = lit(element_count(dims).max(1));
            quote!(::nn_core::Shape1<#len>)
        }
    }
}

/// The number of elements of a shape, saturating (declared shapes whose count
/// overflows are rejected by `lower`).
pub(crate) fn element_count(dims: &[usize]) -> usize {
    dims.iter().fold(1usize, |n, &d| n.saturating_mul(d))
}
