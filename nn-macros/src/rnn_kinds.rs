//! The kinds of the recurrent family: `SimpleRnn`, `Lstm`, `Gru` (stacked and
//! bidirectional), `Embedding` and `SequenceDense`, as entries of
//! [`crate::kinds::KINDS`].
//!
//! A recurrent layer reads a sequence `[time, features]` and returns every step
//! `[time, width]` with `return_sequences: true`, otherwise its last output `[width]`
//! (the Keras default). The width is `units`, or `2 units` for two directions
//! concatenated (`bidirectional: true` with the default `merge: Concat`, PyTorch's
//! layout); `merge: Sum`, `Mean` or `Multiply` keep `units`.
//!
//! When a layer gets a sequence where it wants a vector (or the reverse) and the layer
//! before it is recurrent, [`producer_hint`] adds the fix on that layer
//! (`return_sequences`) to the message.
use proc_macro2::{Literal, TokenStream};
use quote::{quote, ToTokens};

use crate::ir::{unraw, Layer, Op, ShapeInfo};
use crate::kinds::{Activation, Args, Emitted, InputRank, Kind, OptionSpec, OptionType, Resolved};

/// The ways two directions combine, as written in `merge: ...` (and as the variants of
/// `nn_core::layers::Merge`).
pub(crate) const MERGE_MODES: &[&str] = &["Concat", "Sum", "Mean", "Multiply"];

/// The recurrent kinds, whose outputs [`producer_hint`] knows how to change.
const RECURRENT: &[&str] = &["SimpleRnn", "Lstm", "Gru"];

const SEQUENCE: InputRank = InputRank {
    rank: 2,
    noun: "a sequence `[time, features]`",
    hint: "give `{layer}` a `[time, features]` input (a recurrent layer reads one row of features per time step)",
};

const STEPS: InputRank = InputRank {
    rank: 2,
    noun: "a sequence `[time, features]`",
    hint: "use `Dense` for a vector (`SequenceDense` applies a dense layer at every time step)",
};

const TOKENS: InputRank = InputRank {
    rank: 1,
    noun: "token ids `[time]`",
    hint: "give `{layer}` a `[time]` input of integer token ids, one per time step",
};

const UNITS: OptionSpec = OptionSpec { name: "units", ty: OptionType::Count, default: None };
const LAYERS: OptionSpec = OptionSpec { name: "layers", ty: OptionType::Count, default: Some(Resolved::Count(1)) };
const RETURN_SEQUENCES: OptionSpec =
    OptionSpec { name: "return_sequences", ty: OptionType::Flag, default: Some(Resolved::Flag(false)) };
const BIDIRECTIONAL: OptionSpec =
    OptionSpec { name: "bidirectional", ty: OptionType::Flag, default: Some(Resolved::Flag(false)) };
/// Left out, it is `Concat` ([`merge_mode`]); written, it needs `bidirectional: true`
/// ([`merge_needs_two_directions`]).
const MERGE: OptionSpec =
    OptionSpec { name: "merge", ty: OptionType::Choice(MERGE_MODES), default: Some(Resolved::Derived) };
/// Steps of backpropagation through time; the default 0 (never written) is the whole
/// sequence.
const TRUNCATE: OptionSpec = OptionSpec { name: "truncate", ty: OptionType::Count, default: Some(Resolved::Count(0)) };

const RECURRENT_OPTIONS: [OptionSpec; 6] = [UNITS, LAYERS, RETURN_SEQUENCES, BIDIRECTIONAL, MERGE, TRUNCATE];
const SIMPLE_RNN_OPTIONS: [OptionSpec; 7] = [
    UNITS,
    OptionSpec {
        name: "activation",
        ty: OptionType::Activation,
        default: Some(Resolved::Activation(Activation::Tanh)),
    },
    LAYERS,
    RETURN_SEQUENCES,
    BIDIRECTIONAL,
    MERGE,
    TRUNCATE,
];

pub(crate) const SIMPLE_RNN: Kind = Kind {
    name: "SimpleRnn",
    options: &SIMPLE_RNN_OPTIONS,
    input_rank: Some(SEQUENCE),
    shape: |args, input| {
        if !matches!(args.activation("activation"), Activation::Tanh | Activation::Relu) {
            return Err(String::from(
                "`SimpleRnn` takes `activation: Tanh` or `activation: Relu` (PyTorch's `nn.RNN`)",
            ));
        }
        recurrent_shape(args, input)
    },
    emit: |args, input| {
        let activation = args.activation("activation");
        recurrent_emit(args, input, quote!(RnnCell), quote!(::nn_core::layers::RnnCell::new(#activation)))
    },
};

pub(crate) const LSTM: Kind = Kind {
    name: "Lstm",
    options: &RECURRENT_OPTIONS,
    input_rank: Some(SEQUENCE),
    shape: recurrent_shape,
    emit: |args, input| recurrent_emit(args, input, quote!(LstmCell), quote!(::nn_core::layers::LstmCell)),
};

pub(crate) const GRU: Kind = Kind {
    name: "Gru",
    options: &RECURRENT_OPTIONS,
    input_rank: Some(SEQUENCE),
    shape: recurrent_shape,
    emit: |args, input| recurrent_emit(args, input, quote!(GruCell), quote!(::nn_core::layers::GruCell)),
};

pub(crate) const EMBEDDING: Kind = Kind {
    name: "Embedding",
    options: &[
        OptionSpec { name: "vocab", ty: OptionType::Count, default: None },
        OptionSpec { name: "dim", ty: OptionType::Count, default: None },
    ],
    input_rank: Some(TOKENS),
    shape: |args, input| {
        let dim = args.count("dim");
        Ok(match input {
            ShapeInfo::Known(dims) if !args.constant("dim") => ShapeInfo::Known(vec![dims[0], dim]),
            ShapeInfo::Known(_) | ShapeInfo::Opaque(_) => {
                let (steps, dim) = (input.len(), args.size("dim"));
                ShapeInfo::Opaque(quote!(::nn_core::Shape2<#steps, #dim>))
            }
            ShapeInfo::Unknown => ShapeInfo::Unknown,
        })
    },
    emit: |args, input| {
        let (steps, vocab, dim) = (input.len(), args.size("vocab"), args.size("dim"));
        Emitted {
            ty: quote!(::nn_core::layers::Embedding<#steps, #vocab, #dim>),
            value: quote!(::nn_core::layers::Embedding::new()),
        }
    },
};

pub(crate) const SEQUENCE_DENSE: Kind = Kind {
    name: "SequenceDense",
    options: &[
        UNITS,
        OptionSpec {
            name: "activation",
            ty: OptionType::Activation,
            default: Some(Resolved::Activation(Activation::Identity)),
        },
        OptionSpec { name: "bias", ty: OptionType::Flag, default: Some(Resolved::Flag(true)) },
    ],
    input_rank: Some(STEPS),
    shape: |args, input| sequence_of(input, Width::units(args)),
    emit: |args, input| {
        let (steps, features) = steps_and_features(input);
        let units = args.size("units");
        let bias = if args.flag("bias") { quote!() } else { quote!(, false) };
        let activation = args.activation("activation");
        Emitted {
            ty: quote!(::nn_core::layers::SequenceDense<#steps, #features, #units #bias>),
            value: quote!(::nn_core::layers::SequenceDense::new(#activation)),
        }
    },
};

/// How the two directions combine: the `merge` written, else `Concat`.
fn merge_mode(args: &Args) -> &'static str {
    if args.derived("merge") {
        "Concat"
    } else {
        args.choice("merge")
    }
}

/// `merge` combines the two directions of `bidirectional: true`; with one direction it
/// would be ignored.
pub(crate) fn merge_needs_two_directions(args: &Args, _: &ShapeInfo) -> Result<(), String> {
    if args.derived("merge") || args.flag("bidirectional") {
        return Ok(());
    }
    Err(format!(
        "`merge: {}` combines the two directions of a bidirectional layer; add `bidirectional: true`, \
         or remove `merge`",
        args.choice("merge")
    ))
}

fn lit(n: usize) -> Literal {
    Literal::usize_unsuffixed(n)
}

/// The width of one output step: a number, or a `const` expression when `units` is a
/// `const` item.
struct Width {
    known: usize,
    tokens: TokenStream,
    constant: bool,
}

impl Width {
    fn units(args: &Args) -> Width {
        Width { known: args.count("units"), tokens: args.size("units"), constant: args.constant("units") }
    }

    /// `units`, or `2 units` for concatenated directions.
    fn of_output(args: &Args) -> Width {
        let units = Width::units(args);
        if !(args.flag("bidirectional") && merge_mode(args) == "Concat") {
            return units;
        }
        let tokens = &units.tokens;
        Width { known: 2 * units.known, tokens: quote!({ 2 * #tokens }), constant: units.constant }
    }
}

/// `[time, width]` for a `[time, features]` input.
fn sequence_of(input: &ShapeInfo, width: Width) -> Result<ShapeInfo, String> {
    Ok(match input {
        ShapeInfo::Known(dims) if !width.constant => ShapeInfo::Known(vec![dims[0], width.known]),
        ShapeInfo::Known(_) | ShapeInfo::Opaque(_) => {
            let (steps, _) = steps_and_features(input);
            let width = width.tokens;
            ShapeInfo::Opaque(quote!(::nn_core::Shape2<#steps, #width>))
        }
        ShapeInfo::Unknown => ShapeInfo::Unknown,
    })
}

fn recurrent_shape(args: &Args, input: &ShapeInfo) -> Result<ShapeInfo, String> {
    let width = Width::of_output(args);
    if args.flag("return_sequences") {
        sequence_of(input, width)
    } else if width.constant {
        let width = width.tokens;
        Ok(ShapeInfo::Opaque(quote!(::nn_core::Shape1<#width>)))
    } else {
        // The last output's shape does not depend on the input's.
        Ok(ShapeInfo::Known(vec![width.known]))
    }
}

/// `T` and `F` of a `[T, F]` input as const generic arguments; for a shape known only
/// as a type, `const` expressions over its `DIMS` (a wrong rank is reported by the
/// type-level rank check, so these stay total).
fn steps_and_features(input: &ShapeInfo) -> (TokenStream, TokenStream) {
    match input {
        ShapeInfo::Known(dims) if dims.len() == 2 => {
            let (t, f) = (lit(dims[0]), lit(dims[1]));
            (quote!(#t), quote!(#f))
        }
        ShapeInfo::Opaque(ty) => (
            quote!({ <#ty as ::nn_core::Shape>::DIMS[0] }),
            quote!({
                let dims = <#ty as ::nn_core::Shape>::DIMS;
                if dims.len() > 1 { dims[1] } else { 1 }
            }),
        ),
        _ => (quote!(1), quote!(1)),
    }
}

/// `Recurrent<Cell, T, F, H, LAYERS, DIRS, OUT, SEQ>` and its `const` value.
fn recurrent_emit(args: &Args, input: &ShapeInfo, cell: TokenStream, cell_value: TokenStream) -> Emitted {
    let (steps, features) = steps_and_features(input);
    let units = args.size("units");
    let layers = args.size("layers");
    let bidirectional = args.flag("bidirectional");
    let directions = lit(if bidirectional { 2 } else { 1 });
    let width = Width::of_output(args).tokens;
    let sequences = args.flag("return_sequences");
    let mut value = quote!(::nn_core::layers::Recurrent::new(#cell_value));
    if bidirectional {
        let merge = proc_macro2::Ident::new(merge_mode(args), proc_macro2::Span::call_site());
        value = quote!(#value.with_merge(::nn_core::layers::Merge::#merge));
    }
    if args.constant("truncate") || args.count("truncate") > 0 {
        let truncate = match args.constant_path("truncate") {
            Some(path) => quote!(#path),
            None => lit(args.count("truncate")).into_token_stream(),
        };
        value = quote!(#value.with_truncate(#truncate));
    }
    Emitted {
        ty: quote!(::nn_core::layers::Recurrent<
            ::nn_core::layers::#cell, #steps, #features, #units, #layers, #directions, #width, #sequences
        >),
        value,
    }
}

/// What the layer before a wrongly shaped input can change, when it is recurrent:
/// return only its last output (for a layer that wants a vector, `wanted_rank` 1) or
/// every step (for one that wants a sequence, 2).
pub(crate) fn producer_hint(previous: &Layer, wanted_rank: usize) -> Option<String> {
    let Op::Builtin { kind, args } = &previous.op else {
        return None;
    };
    if !RECURRENT.contains(&kind.name) {
        return None;
    }
    let name = unraw(&previous.name);
    match (wanted_rank, args.flag("return_sequences")) {
        (1, true) => Some(format!("give `{name}` `return_sequences: false` to keep only its last output")),
        (2, false) => Some(format!("give `{name}` `return_sequences: true` to output every step")),
        _ => None,
    }
}

/// The kinds that act on each time step alone (with an input `[time, features]`).
const PER_STEP: &[&str] = &[
    "Identity",
    "Relu",
    "Relu6",
    "LeakyRelu",
    "Sigmoid",
    "Tanh",
    "Softmax",
    "Gelu",
    "Elu",
    "Abs",
    "Dropout",
    "SequenceDense",
];

/// `impl nn_core::stream::Step` for a network whose every layer can run one time step
/// at a time (unidirectional recurrent layers returning sequences, per-step layers on
/// sequences, an embedding of token ids), so that `Model::stream` runs it step by step;
/// nothing for any other network. It delegates to the architecture `__NnArch` of the
/// expansion.
pub(crate) fn stream_impl(name: &syn::Ident, layers: &[&Layer]) -> TokenStream {
    let streams = |layer: &Layer| {
        let Op::Builtin { kind, args } = &layer.op else {
            return false;
        };
        let rank = match &layer.input {
            ShapeInfo::Known(dims) => dims.len(),
            _ => 0,
        };
        match kind.name {
            "SimpleRnn" | "Lstm" | "Gru" => args.flag("return_sequences") && !args.flag("bidirectional"),
            "Embedding" => rank == 1,
            name => rank == 2 && PER_STEP.contains(&name),
        }
    };
    if layers.is_empty() || !layers.iter().all(|l| streams(l)) {
        return TokenStream::new();
    }
    quote! {
        impl ::nn_core::stream::Step for #name {
            type StepInput = <__NnArch as ::nn_core::stream::Step>::StepInput;
            type StepOutput = <__NnArch as ::nn_core::stream::Step>::StepOutput;
            type State = <__NnArch as ::nn_core::stream::Step>::State;
            fn initial_state(&self) -> Self::State {
                ::nn_core::stream::Step::initial_state(&__NN_ARCH)
            }
            fn bind(&self, params: &[f32], buffers: &[f32], state: &mut Self::State) {
                ::nn_core::stream::Step::bind(&__NN_ARCH, params, buffers, state)
            }
            fn reset(&self, state: &mut Self::State) {
                ::nn_core::stream::Step::reset(&__NN_ARCH, state)
            }
            fn step(&self, params: &[f32], buffers: &[f32], state: &mut Self::State, x: &[f32], y: &mut [f32]) {
                ::nn_core::stream::Step::step(&__NN_ARCH, params, buffers, state, x, y)
            }
        }
    }
}

/// The initial state a recurrent layer takes in the graph form (`gru(x, h0)`,
/// `lstm(x, h0, c0)`, PyTorch's `lstm(x, (h0, c0))`): how many values (`h`, and `c`
/// for an LSTM) and the shape of each per sample, `[layers * directions, units]`
/// (PyTorch's `h_0` without its batch dimension).
pub(crate) struct InitialState {
    /// 2 for an LSTM (`h0`, `c0`), else 1.
    pub values: usize,
    /// `Known([rows, units])`, or a type when `units` or `layers` is a `const` item.
    pub shape: ShapeInfo,
    /// The call that shows the state, as in `lstm(x, h0, c0)`.
    pub example: String,
}

/// The initial state of `layer`, or `None` if it is not a recurrent layer.
pub(crate) fn initial_state(layer: &Layer) -> Option<InitialState> {
    let Op::Builtin { kind, args } = &layer.op else {
        return None;
    };
    if !RECURRENT.contains(&kind.name) {
        return None;
    }
    let directions = if args.flag("bidirectional") { 2 } else { 1 };
    let shape = if args.constant("units") || args.constant("layers") {
        let (units, layers) = (args.size("units"), args.size("layers"));
        ShapeInfo::Opaque(quote!(::nn_core::Shape2<{ #layers * #directions }, #units>))
    } else {
        ShapeInfo::Known(vec![args.count("layers") * directions, args.count("units")])
    };
    let name = unraw(&layer.name);
    let (values, example) =
        if kind.name == "Lstm" { (2, format!("{name}(x, h0, c0)")) } else { (1, format!("{name}(x, h0)")) };
    Some(InitialState { values, shape, example })
}

/// The final state of `layer` returned by `(y, h) = gru(x)`, `(y, h, c) = lstm(x)`
/// (PyTorch's `h_n`, `c_n` without the batch dimension): as [`initial_state`], but
/// `[units]` for one layer in one direction (Keras's `state_h`); `None` if `layer` is
/// not recurrent.
pub(crate) fn final_state(layer: &Layer) -> Option<InitialState> {
    let mut state = initial_state(layer)?;
    match (&state.shape, &layer.op) {
        (ShapeInfo::Known(dims), _) if dims[0] == 1 => state.shape = ShapeInfo::Known(dims[1..].to_vec()),
        (ShapeInfo::Opaque(_), Op::Builtin { args, .. })
            if !args.constant("layers") && args.count("layers") == 1 && !args.flag("bidirectional") =>
        {
            let units = args.size("units");
            state.shape = ShapeInfo::Opaque(quote!(::nn_core::Shape1<#units>));
        }
        _ => {}
    }
    let name = unraw(&layer.name);
    state.example = if state.values == 2 { format!("(y, h, c) = {name}(x)") } else { format!("(y, h) = {name}(x)") };
    Some(state)
}

/// Checks the names after the output in `(y, h, c) = lstm(x)` (`names`, spanned by
/// `tuple` with the output) against the layer's final `state`: the span and message of
/// a mismatch.
pub(crate) fn check_final_state(
    state: &InitialState,
    names: &[syn::Ident],
    tuple: proc_macro2::Span,
) -> Result<(), (proc_macro2::Span, String)> {
    if names.len() == state.values {
        return Ok(());
    }
    let example = &state.example;
    let shown = |name: &syn::Ident| {
        if crate::parse_graph::is_discard(name) {
            String::from("_")
        } else {
            unraw(name)
        }
    };
    if state.values == 1 && names.len() > 1 {
        return Err((
            names[1].span(),
            format!(
                "only an LSTM has a cell state: the final state of this layer is `h` alone, as in `{example}`, but \
                 `{}` names a second value",
                shown(&names[1])
            ),
        ));
    }
    if names.len() > state.values {
        return Err((
            names[state.values].span(),
            format!("`{}` is one value too many: the final state is `h` and `c`, as in `{example}`", shown(&names[2])),
        ));
    }
    if state.values == 2 && names.len() == 1 {
        return Err((tuple, format!("an LSTM's final state is `h` and `c`: name both, as in `{example}`")));
    }
    Err((tuple, format!("name the final state after the output, as in `{example}`")))
}
