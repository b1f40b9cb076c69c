//! Phase 4: the Rust items of a network, from its `ir::Graph`.
//!
//! For `struct Name` the expansion is the unit struct, then a `const _: () = { ... }`
//! block that hides the rest. For a graph that is a sequence of layers: the
//! architecture type (`Named` layers right-nested in `Chain`s), its `const` value, the
//! type-level shape checks and the `Layer` and `Network` impls, which delegate to the
//! architecture (`tests/layers/handwritten_expansion.rs` in the workspace is the same
//! code written by hand). Any other graph runs its statements (`expand_graph`). Both
//! write their `Layer` impl through [`layer_impl`], the one place its signatures are.
//!
//! A network with errors expands to the struct and a stub impl with its declared
//! shapes, so code that uses it type-checks and the user sees only the real errors.
use proc_macro2::{Group, Span, TokenStream, TokenTree};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Ident, Path, PathArguments};

use crate::ir::{shape_type, unraw, Graph, GraphLayer, Layer, Network, Op, ShapeInfo};
use crate::kinds::Emitted;
use crate::suggest;

/// The complete expansion of a network without errors: a sequence of layers is an
/// architecture of `Chain`s that its impls delegate to (`sequence`), any other graph
/// runs its statements (`expand_graph::expand`).
pub(crate) fn network(g: &Graph) -> TokenStream {
    let items = match g.sequence() {
        Some(layers) => sequence(g, &layers),
        None => crate::expand_graph::expand(g),
    };
    let description = crate::describe::describe(g);
    quote!(#items #description)
}

/// The expansion of a graph whose statements apply `layers` in turn.
fn sequence(g: &Graph, layers_in_order: &[&Layer]) -> TokenStream {
    let net = &g.net;
    let name = &net.name;
    let item = struct_item(net);

    let mut checks = Checks::default();
    let layers: Vec<Emitted> = layers_in_order.iter().map(|l| layer(l, &mut checks)).collect();
    for (span, actual, expected, message, label) in &g.type_checks {
        checks.same(*span, actual.clone(), expected.clone(), message, label);
    }

    let mut arch_ty = TokenStream::new();
    let mut arch_value = TokenStream::new();
    for (i, (layer, Emitted { ty, value })) in layers_in_order.iter().zip(&layers).enumerate().rev() {
        let layer_name = unraw(&layer.name);
        let named_ty = quote!(::nn_core::__private::Named<#ty>);
        let named_value = quote!(::nn_core::__private::Named { name: #layer_name, layer: #value });
        if i + 1 == layers.len() {
            arch_ty = named_ty;
            arch_value = named_value;
        } else {
            arch_ty = quote!(::nn_core::__private::Chain<#named_ty, #arch_ty>);
            arch_value = quote!(::nn_core::__private::Chain { first: #named_value, rest: #arch_value });
        }
    }
    let tensors = tensor_tree(
        layers_in_order
            .iter()
            .zip(&layers)
            .map(|(layer, Emitted { ty, .. })| (unraw(&layer.name), quote!(<#ty as ::nn_core::Layer>::TENSORS)))
            .collect(),
    );
    let Checks { aliases, items, .. } = checks;
    // Streaming, when every layer can run one time step at a time.
    let stream = crate::rnn_kinds::stream_impl(name, layers_in_order);
    let nests = !nested_networks(g).is_empty();
    // Batch-1 inference through the architecture's `forward_value` (values passed by
    // value where the sequence's are small), unless the network nests networks: then
    // its sizes go through `nesting`'s constants and it keeps the trait's default.
    let network_impl = network_impl(name, if nests { quote!(self) } else { quote!(&__NN_ARCH) });
    let token_input = token_input_impl(name, layers_in_order, &layers);
    let arch = quote!(<__NnArch as ::nn_core::Layer>);
    let (nesting, sizes) = nesting(
        g,
        SizeValues {
            params: quote!(#arch::PARAMS),
            buffers: quote!(#arch::BUFFERS),
            cache: quote!(#arch::CACHE),
            scratch: quote!(#arch::SCRATCH),
            forward_scratch: Some(quote!(#arch::FORWARD_SCRATCH)),
            tensors: Some(tensors),
        },
    );
    let layer_impl = layer_impl(
        name,
        declared_types(net),
        LayerImpl {
            consts: sizes,
            init: quote!(::nn_core::Layer::init(&__NN_ARCH, params, buffers, rng)),
            forward: quote!(::nn_core::Layer::forward(&__NN_ARCH, w, x, y, scratch)),
            forward_train: quote!(::nn_core::Layer::forward_train(&__NN_ARCH, x, y, cx)),
            backward: quote!(::nn_core::Layer::backward(&__NN_ARCH, x, y, dy, dx, cx)),
            visit_tensors: quote!(::nn_core::Layer::visit_tensors(&__NN_ARCH, path, params_at, buffers_at, f)),
            visit_summary: Some(quote!(::nn_core::Layer::visit_summary(&__NN_ARCH, "", depth, f))),
            by_value: !nests,
        },
    );

    quote! {
        #item
        const _: () = {
            type __NnArch = #arch_ty;
            const __NN_ARCH: __NnArch = #arch_value;
            #(#aliases)*
            #(#items)*
            #nesting

            #layer_impl

            #network_impl

            #token_input

            #stream
        };
    }
}

/// The size constants of a network's `Layer` impl, as expressions in the scope of its
/// expansion (`None`: the trait's default).
pub(crate) struct SizeValues {
    pub params: TokenStream,
    pub buffers: TokenStream,
    pub cache: TokenStream,
    pub scratch: TokenStream,
    pub forward_scratch: Option<TokenStream>,
    pub tensors: Option<TokenStream>,
}

/// The items that let a network that contains itself through networks of other
/// invocations (which the macro sees only as names) be one error in the user's terms,
/// and the size constants of `g`'s `Layer` impl: `(items, consts)`, the items to emit
/// next to the impl, the constants to put in it.
///
/// A network that nests no network cannot be part of a cycle: no items, and the
/// constants are `sizes`. Any other has a `static` node (`nn_core::__private::Node`,
/// `Layer::NODE`) naming its layers that are networks, a constant that walks the
/// graph of nodes and panics with the cycle (``network `A` contains itself: A -> b: B
/// -> a: A``) at the layer of `g` that starts it, when `g` is the cycle's network of
/// least key (so that a cycle is one error), and size constants that are all zero
/// when `g` is on a cycle: they read `sizes` through a call (`__private::sizes`),
/// which rustc runs only when the network is on no cycle, so that the sizes of the
/// networks of a cycle never read each other (rustc's E0391 over the library's
/// constants).
pub(crate) fn nesting(g: &Graph, sizes: SizeValues) -> (TokenStream, TokenStream) {
    let SizeValues { params, buffers, cache, scratch, forward_scratch, tensors } = sizes;
    let nested = nested_networks(g);
    if nested.is_empty() {
        let forward_scratch = forward_scratch.map(|value| quote!(const FORWARD_SCRATCH: usize = #value;));
        let tensors = tensors.map(|value| quote!(const TENSORS: &'static ::nn_core::weights::TensorTree = #value;));
        let consts = quote! {
            const PARAMS: usize = #params;
            const BUFFERS: usize = #buffers;
            const CACHE: usize = #cache;
            const SCRATCH: usize = #scratch;
            #forward_scratch
            #tensors
        };
        return (TokenStream::new(), consts);
    }
    let name = &g.net.name;
    let name_str = unraw(name);
    let p = quote!(::nn_core::__private);
    let edges = nested.iter().map(|(layer, kind)| {
        quote_spanned!(kind.span()=> #p::Edge { layer: #layer, network: <#kind as ::nn_core::Layer>::NODE })
    });
    let panics = nested.iter().enumerate().map(|(i, (_, kind))| {
        let panic = quote_spanned!(kind.span()=> ::core::panic!("{}", __cycle.message()));
        quote!(::core::option::Option::Some(__cycle) if __cycle.layer == #i => #panic,)
    });
    let key = quote_spanned! {name.span()=>
        ::core::concat!(
            ::core::module_path!(), "::", #name_str, " at ", ::core::file!(), ":", ::core::line!(), ":", ::core::column!()
        )
    };
    let (forward_scratch_item, forward_scratch_const) = match forward_scratch {
        Some(value) => (
            Some(quote!(const FORWARD_SCRATCH: usize = #value;)),
            Some(quote!(
                const FORWARD_SCRATCH: usize = __NN_SIZES.forward_scratch;
            )),
        ),
        None => (None, None),
    };
    let (tensors_item, tensors_const) = match tensors {
        Some(value) => (
            Some(quote!(const TENSORS: &'static ::nn_core::weights::TensorTree = #value;)),
            Some(quote!(
                const TENSORS: &'static ::nn_core::weights::TensorTree = __NN_SIZES.tensors;
            )),
        ),
        None => (None, None),
    };
    let items = quote! {
        static __NN_NODE: #p::Node = #p::Node { key: #key, name: #name_str, layers: &[#(#edges),*] };
        const _: () = match #p::contains_itself(&__NN_NODE, true) {
            #(#panics)*
            _ => {}
        };
        const __NN_CONTAINS_ITSELF: bool = #p::contains_itself(&__NN_NODE, false).is_some();
        struct __NnSizes;
        impl #p::Sizes for __NnSizes {
            const PARAMS: usize = #params;
            const BUFFERS: usize = #buffers;
            const CACHE: usize = #cache;
            const SCRATCH: usize = #scratch;
            #forward_scratch_item
            #tensors_item
        }
        const __NN_SIZES: #p::Totals =
            if __NN_CONTAINS_ITSELF { #p::Totals::CONTAINS_ITSELF } else { #p::sizes::<__NnSizes>() };
    };
    let consts = quote! {
        const NODE: ::core::option::Option<#p::NodeRef> = ::core::option::Option::Some(#p::NodeRef::new(&__NN_NODE));
        const PARAMS: usize = __NN_SIZES.params;
        const BUFFERS: usize = __NN_SIZES.buffers;
        const CACHE: usize = __NN_SIZES.cache;
        const SCRATCH: usize = __NN_SIZES.scratch;
        #forward_scratch_const
        #tensors_const
    };
    (items, consts)
}

/// The layers of `g` that are networks: `(name, type)`.
fn nested_networks(g: &Graph) -> Vec<(String, &Path)> {
    g.layers
        .iter()
        .filter_map(|layer| match layer {
            GraphLayer::Plain(Layer { op: Op::Network, kind, name, .. }) => Some((unraw(name), kind)),
            _ => None,
        })
        .collect()
}

/// `TokenInput` for a network whose first layer is an `Embedding`: it takes integer
/// token ids (`Model::predict_ids`, `Dataset::from_token_ids`). Nothing otherwise.
fn token_input_impl(name: &Ident, layers_in_order: &[&Layer], emitted: &[Emitted]) -> TokenStream {
    match (layers_in_order.first(), emitted.first()) {
        (Some(Layer { op: Op::Builtin { kind, .. }, .. }), Some(Emitted { ty, .. })) if kind.name == "Embedding" => {
            quote! {
                impl ::nn_core::tokens::TokenInput for #name {
                    const VOCAB: usize = <#ty as ::nn_core::tokens::TokenInput>::VOCAB;
                }
            }
        }
        _ => TokenStream::new(),
    }
}

/// The compile-time description of the tensors of layers in order, each `(name, tree)`
/// under its name (`TensorTree::Scope`s in right-nested `TensorTree::Pair`s).
pub(crate) fn tensor_tree(layers: Vec<(String, TokenStream)>) -> TokenStream {
    let mut tree: Option<TokenStream> = None;
    for (name, inner) in layers.into_iter().rev() {
        let scope = quote!(&::nn_core::weights::TensorTree::Scope { name: #name, inner: #inner });
        tree = Some(match tree {
            None => scope,
            Some(rest) => quote!(&::nn_core::weights::TensorTree::Pair { first: #scope, rest: #rest }),
        });
    }
    tree.unwrap_or_else(|| quote!(&::nn_core::weights::TensorTree::Empty))
}

/// The parts of one `impl nn_core::Layer` that differ between networks: the constants
/// after `PARAMS` (the associated types and `KIND` come from the declaration) and the
/// bodies of the methods, which see the trait's argument names (`params`, `buffers`
/// and `rng` in `init`; `w` in `forward`; `x`, `y`, `scratch`; `cx` in `forward_train`
/// and `backward`, with `dy` and `dx`; `path`, `params_at`, `buffers_at`, `f`,
/// `depth`). `visit_summary`, when present, lists the layers at `depth` after the
/// network's own row (written when the network is nested in another one). With
/// `by_value`, batch-1 inference (`forward_value`, `forward_owned`, `VALUE_SCRATCH`,
/// `VALUE_STACK`) is the architecture's (`__NN_ARCH`), else the trait's defaults.
pub(crate) struct LayerImpl {
    pub consts: TokenStream,
    pub init: TokenStream,
    pub forward: TokenStream,
    pub forward_train: TokenStream,
    pub backward: TokenStream,
    pub visit_tensors: TokenStream,
    pub visit_summary: Option<TokenStream>,
    pub by_value: bool,
}

/// The arguments of `visit_tensors`, of `Layer`'s and of the inherent method of a
/// network with several inputs or outputs.
pub(crate) fn visit_tensors_args() -> TokenStream {
    quote! {
        &self,
        path: ::core::option::Option<&::nn_core::TensorPath<'_>>,
        params_at: usize,
        buffers_at: usize,
        f: &mut dyn FnMut(&::nn_core::TensorInfo<'_>),
    }
}

/// `impl nn_core::Layer for Name`, the one place its methods' signatures are written.
/// `types` are the `Input` and `Output` shape types (those declared, from
/// [`declared_types`], but for a network with several inputs or outputs).
pub(crate) fn layer_impl(name: &Ident, types: (TokenStream, TokenStream), parts: LayerImpl) -> TokenStream {
    let kind = unraw(name);
    let (input, output) = types;
    let LayerImpl { consts, init, forward, forward_train, backward, visit_tensors, visit_summary, by_value } = parts;
    let visit_args = visit_tensors_args();
    let by_value = by_value.then(|| {
        let arch = quote!(<__NnArch as ::nn_core::Layer>);
        quote! {
            const VALUE_SCRATCH: usize = #arch::VALUE_SCRATCH;
            const VALUE_STACK: usize = #arch::VALUE_STACK;
            const VALUE_LEN: usize = #arch::VALUE_LEN;
            #[inline]
            fn forward_value(
                &self,
                w: ::nn_core::Weights<'_>,
                x: &[f32],
                scratch: &mut [f32],
            ) -> ::nn_core::Tensor<Self::Output> {
                ::nn_core::__private::forward_value(&__NN_ARCH, w, x, scratch)
            }
        }
    });
    let visit_summary = visit_summary.map(|body| {
        quote! {
            fn visit_summary(
                &self,
                name: &str,
                depth: usize,
                f: &mut dyn FnMut(&::nn_core::layer::SummaryRow<'_>),
            ) {
                // Nested in another network (`name` is its layer name): one row for
                // the whole network, then its layers one level deeper.
                let depth = if name.is_empty() {
                    depth
                } else {
                    f(&::nn_core::layer::SummaryRow {
                        name,
                        kind: #kind,
                        depth,
                        output: <#output as ::nn_core::Shape>::DIMS,
                        params: <Self as ::nn_core::Layer>::PARAMS,
                    });
                    depth + 1
                };
                #body
            }
        }
    });
    quote! {
        #[allow(unused_variables, unused_mut, clippy::all)]
        impl ::nn_core::Layer for #name {
            type Input = #input;
            type Output = #output;
            const KIND: &'static str = #kind;
            #consts
            fn init(&self, params: &mut [f32], buffers: &mut [f32], rng: &mut ::nn_core::Rng) {
                #init
            }
            fn forward(&self, w: ::nn_core::Weights<'_>, x: &[f32], y: &mut [f32], scratch: &mut [f32]) {
                #forward
            }
            fn forward_train(&self, x: &[f32], y: &mut [f32], cx: ::nn_core::TrainCtx<'_>) {
                #forward_train
            }
            fn backward(
                &self,
                x: &[f32],
                y: &[f32],
                dy: &mut [f32],
                dx: ::core::option::Option<&mut [f32]>,
                cx: ::nn_core::BackwardCtx<'_>,
            ) {
                #backward
            }
            fn visit_tensors(#visit_args) {
                #visit_tensors
            }
            #visit_summary
            #by_value
        }
    }
}

/// The `Network` impl of `name`: `forward_one` runs the `Layer::forward` of `layer`
/// (an expression of a `Layer` type with `name`'s shapes) on one sample, with its
/// scratch on the stack.
pub(crate) fn network_impl(name: &Ident, layer: TokenStream) -> TokenStream {
    let kind = unraw(name);
    quote! {
        impl ::nn_core::Network for #name {
            const NAME: &'static str = #kind;
            fn forward_one(
                &self,
                params: &[f32],
                buffers: &[f32],
                x: &::nn_core::Tensor<Self::Input>,
            ) -> ::nn_core::Tensor<Self::Output> {
                // The scratch on the stack, unless the network is too large for it (see
                // `STACK_LIMIT_BYTES`).
                const ON_STACK: usize = ::nn_core::__private::stack_scratch_len(
                    <#name as ::nn_core::Layer>::VALUE_SCRATCH,
                    <#name as ::nn_core::Network>::STACK_BOUND_BYTES,
                );
                let mut stack = [0.0f32; ON_STACK];
                let len = <#name as ::nn_core::Layer>::VALUE_SCRATCH;
                // The output by value, from the last layer (see `__private::forward_value`).
                ::nn_core::__private::with_forward_scratch(&mut stack, len, |scratch| {
                    ::nn_core::__private::forward_value(#layer, ::nn_core::Weights::new(params, buffers), x, scratch)
                })
            }
        }
    }
}

/// The expansion of a network with errors: the struct and impls that do nothing, with
/// the declared shapes.
pub(crate) fn stub(net: &Network) -> TokenStream {
    let name = &net.name;
    let kind = unraw(name);
    let item = struct_item(net);
    let nothing = TokenStream::new;
    let layer_impl = layer_impl(
        name,
        declared_types(net),
        LayerImpl {
            consts: quote!(
                const PARAMS: usize = 0;
            ),
            init: nothing(),
            forward: nothing(),
            forward_train: nothing(),
            backward: nothing(),
            visit_tensors: nothing(),
            visit_summary: None,
            by_value: false,
        },
    );
    quote! {
        #item
        const _: () = {
            #layer_impl
            impl ::nn_core::Network for #name {
                const NAME: &'static str = #kind;
                fn forward_one(
                    &self,
                    _params: &[f32],
                    _buffers: &[f32],
                    _x: &::nn_core::Tensor<Self::Input>,
                ) -> ::nn_core::Tensor<Self::Output> {
                    ::nn_core::Tensor::zeros()
                }
            }
        };
    }
}

/// The user's struct with its attributes; a summary doc if the user wrote none, so
/// that a crate with `#![warn(missing_docs)]` stays quiet.
pub(crate) fn struct_item(net: &Network) -> TokenStream {
    let attrs = &net.attrs;
    let vis = &net.vis;
    let name = &net.name;
    let documented = attrs.iter().any(|a| a.path().is_ident("doc"));
    let doc = if documented {
        None
    } else {
        let dims = |d: &Option<crate::ir::DeclaredShape>| match d.as_ref().and_then(|d| d.dims.as_deref()) {
            Some(dims) => suggest::dims(dims),
            None => String::from("[?]"),
        };
        let text = format!(" The network `{}`: `{} -> {}`.", unraw(name), dims(&net.input), dims(&net.output));
        Some(quote!(#[doc = #text]))
    };
    quote! {
        #(#attrs)*
        #doc
        #[derive(Clone, Copy, Debug, Default)]
        #vis struct #name;
    }
}

/// The declared input and output shape types (a placeholder for an invalid one).
pub(crate) fn declared_types(net: &Network) -> (TokenStream, TokenStream) {
    let ty = |d: &Option<crate::ir::DeclaredShape>| match d.as_ref().and_then(|d| d.dims.as_deref()) {
        Some(dims) => shape_type(dims),
        None => shape_type(&[1]),
    };
    (ty(&net.input), ty(&net.output))
}

/// The type-level checks of shapes the macro knows only as types.
///
/// Each check is a `const` that names a local trait with a custom message
/// (`#[diagnostic::on_unimplemented]`) implemented only when two shapes are equal (or
/// when a shape has the right rank). The shapes it compares are type aliases spanned
/// at the user's tokens, so the error points there; the aliases live outside the
/// check's block so that the block's own trait cannot shadow a user type.
#[derive(Default)]
pub(crate) struct Checks {
    pub aliases: Vec<TokenStream>,
    pub items: Vec<TokenStream>,
}

impl Checks {
    /// A type alias for `ty`, named at `span`.
    pub(crate) fn alias(&mut self, ty: TokenStream, span: Span) -> Ident {
        let ident = format_ident!("__NnShape{}", self.aliases.len(), span = span);
        self.aliases.push(quote!(type #ident = #ty;));
        ident
    }

    /// `actual` must be the same shape as `expected`. `{Self}` in `message` is the
    /// actual shape and `{Expected}` the expected one.
    pub(crate) fn same(&mut self, span: Span, actual: TokenStream, expected: TokenStream, message: &str, label: &str) {
        let actual = self.alias(actual, span);
        let expected = self.alias(expected, span);
        self.items.push(quote_spanned! {span=>
            const _: () = {
                #[diagnostic::on_unimplemented(message = #message, label = #label)]
                trait Fits<Expected> {}
                impl<__S> Fits<__S> for __S {}
                const fn check<__Actual: Fits<__Expected>, __Expected>() {}
                const _: () = check::<#actual, #expected>();
            };
        });
    }

    /// `actual` must be the same shape as `expected`, a recurrent layer's initial
    /// state `Shape2<rows, units>`, or `Shape1<units>` when `rows` is 1 (as
    /// [`Self::same`] otherwise).
    pub(crate) fn state(&mut self, span: Span, actual: TokenStream, expected: TokenStream, message: &str, label: &str) {
        let actual = self.alias(actual, span);
        let expected = self.alias(expected, span);
        self.items.push(quote_spanned! {span=>
            const _: () = {
                #[diagnostic::on_unimplemented(message = #message, label = #label)]
                trait Fits<Expected> {}
                impl<__S> Fits<__S> for __S {}
                #[diagnostic::do_not_recommend]
                impl<const __H: usize> Fits<::nn_core::Shape2<1, __H>> for ::nn_core::Shape1<__H> {}
                const fn check<__Actual: Fits<__Expected>, __Expected>() {}
                const _: () = check::<#actual, #expected>();
            };
        });
    }

    /// `actual` must have `rank` dimensions. `{Self}` in `message` is the shape.
    pub(crate) fn rank(&mut self, span: Span, actual: TokenStream, rank: usize, message: &str, label: &str) {
        let actual = self.alias(actual, span);
        let shape = match rank {
            1 => quote!(::nn_core::Shape1<__D0>),
            2 => quote!(::nn_core::Shape2<__D0, __D1>),
            _ => quote!(::nn_core::Shape3<__D0, __D1, __D2>),
        };
        // Names no user type has: a generic argument that is one name resolves as a
        // type first, so a network named `A` would shadow a const parameter `A`.
        let params = match rank {
            1 => quote!(const __D0: usize),
            2 => quote!(const __D0: usize, const __D1: usize),
            _ => quote!(const __D0: usize, const __D1: usize, const __D2: usize),
        };
        self.items.push(quote_spanned! {span=>
            const _: () = {
                #[diagnostic::on_unimplemented(message = #message, label = #label)]
                trait HasRank {}
                #[diagnostic::do_not_recommend]
                impl<#params> HasRank for #shape {}
                const fn check<__S: HasRank>() {}
                const _: () = check::<#actual>();
            };
        });
    }
}

/// `tokens` with every span set to `span`.
fn respan(tokens: TokenStream, span: Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|tree| match tree {
            TokenTree::Group(group) => {
                let mut respanned = Group::new(group.delimiter(), respan(group.stream(), span));
                respanned.set_span(span);
                TokenTree::Group(respanned)
            }
            mut other => {
                other.set_span(span);
                other
            }
        })
        .collect()
}

/// Braces are placeholders in `on_unimplemented` messages; user text doubles them.
pub(crate) fn escape(text: &str) -> String {
    text.replace('{', "{{").replace('}', "}}")
}

/// The shape as a message shows it: literal dims, or the `{Self}` placeholder.
pub(crate) fn shown(shape: &ShapeInfo) -> String {
    match shape {
        ShapeInfo::Known(dims) => suggest::dims(dims),
        _ => String::from("`{Self}`"),
    }
}

/// The type and value of one layer, recording its type-level checks.
pub(crate) fn layer(layer: &Layer, checks: &mut Checks) -> Emitted {
    let layer_name = escape(&unraw(&layer.name));
    let span = layer.kind.span();
    let fit = |input: &ShapeInfo, Emitted { ty, value }: Emitted| {
        let shape = input.ty();
        Emitted {
            ty: quote!(::nn_core::__private::Fit<#shape, #ty>),
            value: quote!(::nn_core::__private::Fit::new(#value)),
        }
    };
    let emitted = match &layer.op {
        Op::Builtin { kind, args } => {
            let emitted = (kind.emit)(args, &layer.input);
            // A constructor that rejects its configuration when the network is compiled
            // (shapes the macro saw only as types) is reported at the layer.
            let emitted = Emitted { value: respan(emitted.value, span), ..emitted };
            match (&kind.input_rank, &layer.input) {
                (Some(rank), ShapeInfo::Opaque(ty)) => {
                    let hint = escape(&rank.hint.replace("{layer}", &unraw(&layer.name)));
                    let message = format!(
                        "`{layer_name}` (`{}`) takes {}, but {}",
                        kind.name,
                        rank.noun,
                        layer.source.produces("`{Self}`")
                    );
                    checks.rank(span, ty.clone(), rank.rank, &message, &hint);
                    // The layer's own input type is built from the length; `Fit` gives
                    // it the previous layer's output type, so a wrong rank is reported
                    // once, by the check above.
                    fit(&layer.input, emitted)
                }
                _ => emitted,
            }
        }
        Op::Network => {
            let path = &layer.kind;
            let written = escape(&suggest::compact(path));
            let message = format!(
                "shape mismatch: `{layer_name}` (`{written}`) takes `{{Expected}}` but {}",
                layer.source.produces(&shown(&layer.input))
            );
            let label = format!("`{written}` takes `{{Expected}}`");
            let input = quote_spanned!(span=> <#path as ::nn_core::Layer>::Input);
            checks.same(span, layer.input.ty(), input, &message, &label);
            let value = value_path(path);
            fit(&layer.input, Emitted { ty: quote!(#path), value: quote!(#value) })
        }
        // Only networks without errors are expanded, and they have no invalid layer.
        Op::Invalid => {
            let shape = layer.input.ty();
            Emitted {
                ty: quote!(::nn_core::layers::Act<#shape>),
                value: quote!(::nn_core::layers::Act::new(::nn_core::Activation::Identity)),
            }
        }
    };
    if let (Some(assertion), ShapeInfo::Opaque(ty)) = (&layer.assertion, &layer.output) {
        if let Some(dims) = &assertion.dims {
            let message = format!("`{layer_name}` produces `{{Self}}`, not {}", suggest::dims(dims));
            checks.same(assertion.span, ty.clone(), shape_type(dims), &message, "asserted here");
        }
    }
    emitted
}

/// A type path as a value (a unit struct): `Tower<3>` becomes `Tower::<3>`.
fn value_path(path: &Path) -> Path {
    let mut path = path.clone();
    for segment in &mut path.segments {
        if let PathArguments::AngleBracketed(args) = &mut segment.arguments {
            args.colon2_token = Some(Default::default());
        }
    }
    path
}
