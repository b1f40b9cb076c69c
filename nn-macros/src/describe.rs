//! The `nn_core::describe::Describe` impl of a network: its layers' kinds and options,
//! its values' shapes and its statements, as `const` data read from the `ir::Graph`
//! (the options resolved by `lower`, `Same` padding and derived pooling strides
//! included), for tools that transform whole networks.
use proc_macro2::{Literal, TokenStream};
use quote::quote;

use crate::conv_kinds::{pad, pool_stride};
use crate::ir::{unraw, Graph, GraphLayer, NodeOp, Op, ShapeInfo};
use crate::kinds::{float, Args};
use crate::parse_graph::is_discard;

/// `impl ::nn_core::describe::Describe for Name { const DESCRIPTION: ... }`.
pub(crate) fn describe(g: &Graph) -> TokenStream {
    let name = &g.net.name;
    let name_text = unraw(name);
    let layers = g.layers.iter().map(|layer| {
        let layer_name = unraw(layer.name());
        let kind = kind(layer);
        quote!(::nn_core::describe::LayerDescription { name: #layer_name, kind: #kind })
    });
    let values = g.values.iter().map(|v| match &v.shape {
        ShapeInfo::Known(dims) => {
            let dims = dims.iter().map(|&d| Literal::usize_unsuffixed(d));
            quote!(&[#(#dims),*])
        }
        ShapeInfo::Opaque(ty) => quote!(<#ty as ::nn_core::Shape>::DIMS),
        ShapeInfo::Unknown => quote!(&[]),
    });
    // A discarded value (`(_, h) = gru(x)`) as written.
    let value_names = g.values.iter().map(|v| if is_discard(&v.name) { String::from("_") } else { unraw(&v.name) });
    let statements = g.nodes.iter().map(|node| {
        let output = node.out;
        let inputs = &node.args;
        match &node.op {
            NodeOp::Apply(layer) => {
                // `layer(x, h0, c0)`: the arguments after the first are the initial state.
                let input = inputs.first().copied().unwrap_or_default();
                let initial = inputs.get(1..).unwrap_or_default();
                let states = &node.states;
                quote!(::nn_core::describe::Statement::Apply {
                    layer: #layer, input: #input, initial: &[#(#initial),*], output: #output, states: &[#(#states),*],
                })
            }
            NodeOp::Add => quote!(::nn_core::describe::Statement::Add { inputs: &[#(#inputs),*], output: #output }),
            NodeOp::Subtract => {
                quote!(::nn_core::describe::Statement::Subtract { inputs: &[#(#inputs),*], output: #output })
            }
            NodeOp::Multiply => {
                quote!(::nn_core::describe::Statement::Multiply { inputs: &[#(#inputs),*], output: #output })
            }
            NodeOp::Concat(blocks) => quote! {
                ::nn_core::describe::Statement::Concat { inputs: &[#(#inputs),*], blocks: &[#(#blocks),*], output: #output }
            },
        }
    });
    let (inputs, outputs) = (&g.inputs, &g.outputs);
    quote! {
        impl ::nn_core::describe::Describe for #name {
            const DESCRIPTION: ::nn_core::describe::Description = ::nn_core::describe::Description {
                name: #name_text,
                layers: &[#(#layers),*],
                values: &[#(#values),*],
                value_names: &[#(#value_names),*],
                statements: &[#(#statements),*],
                inputs: &[#(#inputs),*],
                outputs: &[#(#outputs),*],
            };
        }
    }
}

/// The `nn_core::describe::LayerKind` of one layer.
fn kind(layer: &GraphLayer) -> TokenStream {
    let (kind, args) = match layer {
        GraphLayer::Plain(l) => match &l.op {
            Op::Builtin { kind, args } => (kind.name, args),
            _ => {
                let written = l.kind.segments.last().map(|s| s.ident.to_string()).unwrap_or_default();
                return quote!(::nn_core::describe::LayerKind::Other { kind: #written });
            }
        },
        GraphLayer::Tied { .. } => return quote!(::nn_core::describe::LayerKind::Other { kind: "TiedDense" }),
    };
    let pair = |v: [usize; 2]| {
        let [a, b] = v.map(Literal::usize_unsuffixed);
        quote!([#a, #b])
    };
    let axes: usize = if kind.ends_with("1d") { 1 } else { 2 };
    match kind {
        "Dense" => {
            let (units, activation, bias) = (args.count("units"), args.activation("activation"), args.flag("bias"));
            quote!(::nn_core::describe::LayerKind::Dense { units: #units, activation: #activation, bias: #bias })
        }
        "Conv1d" | "Conv2d" => {
            let (kernel, dilation) = (args.axes("kernel"), args.axes("dilation"));
            let padding = [0, 1].map(|a| pair(pad(args.padding("padding"), a, kernel[a], dilation[a])));
            let (filters, groups, bias) = (args.count("filters"), args.count("groups"), args.flag("bias"));
            let (kernel, stride, dilation) = (pair(kernel), pair(args.axes("stride")), pair(dilation));
            quote!(::nn_core::describe::LayerKind::Conv {
                axes: #axes, filters: #filters, kernel: #kernel, stride: #stride,
                padding: [#(#padding),*], dilation: #dilation, groups: #groups, bias: #bias,
            })
        }
        "MaxPool1d" | "MaxPool2d" | "AvgPool1d" | "AvgPool2d" => {
            let variant = if kind.starts_with("Max") { quote!(MaxPool) } else { quote!(AvgPool) };
            let (size, stride, padding) =
                (pair(args.axes("size")), pair(pool_stride(args)), pair(args.axes("padding")));
            quote!(::nn_core::describe::LayerKind::#variant { axes: #axes, size: #size, stride: #stride, padding: #padding })
        }
        "BatchNorm1d" | "BatchNorm2d" => {
            let eps = float(args.float("eps"));
            quote!(::nn_core::describe::LayerKind::BatchNorm { eps: #eps })
        }
        "Flatten" => quote!(::nn_core::describe::LayerKind::Flatten),
        "Reshape" => quote!(::nn_core::describe::LayerKind::Reshape),
        "Dropout" => quote!(::nn_core::describe::LayerKind::Dropout),
        _ => match activation(kind, args) {
            Some(activation) => quote!(::nn_core::describe::LayerKind::Activation(#activation)),
            None => quote!(::nn_core::describe::LayerKind::Other { kind: #kind }),
        },
    }
}

/// The activation of an activation kind used as a layer (`Relu`, `LeakyRelu`).
fn activation(kind: &str, args: &Args) -> Option<TokenStream> {
    let alpha = || float(args.float("alpha"));
    Some(match kind {
        "Identity" | "Relu" | "Relu6" | "Sigmoid" | "Tanh" | "Softmax" | "Gelu" | "Abs" => {
            let variant: TokenStream = kind.parse().ok()?;
            quote!(::nn_core::Activation::#variant)
        }
        "LeakyRelu" => {
            let alpha = alpha();
            quote!(::nn_core::Activation::LeakyRelu(#alpha))
        }
        "Elu" => {
            let alpha = alpha();
            quote!(::nn_core::Activation::Elu(#alpha))
        }
        _ => return None,
    })
}
