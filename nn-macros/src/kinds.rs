//! The built-in layer kinds, as data.
//!
//! A kind is one [`Kind`] entry in [`KINDS`]: its name, its options (name, type,
//! default), the input rank it needs, its shape function and the code of the layer.
//! Adding a kind (`Conv2d`, `MaxPool2d`, `Flatten`, `Lstm`) is adding one entry; the
//! parser, the option checks, the suggestions and the expansion need no change.
use proc_macro2::{Literal, TokenStream};
use quote::{quote, ToTokens};

use crate::conv_kinds;
use crate::ir::ShapeInfo;
use crate::parse::Value;
use crate::suggest;

/// A built-in layer kind.
pub(crate) struct Kind {
    /// The name written in `network!` (`Dense`).
    pub name: &'static str,
    pub options: &'static [OptionSpec],
    /// The rank the input must have; `None` for any shape.
    pub input_rank: Option<InputRank>,
    /// The output shape for an input shape (`Unknown` if an earlier layer failed).
    /// Called only with valid options and, when `input_rank` is set, an input of that
    /// rank or an opaque or unknown one. An `Err` is a message about this layer.
    pub shape: fn(&Args, &ShapeInfo) -> Result<ShapeInfo, String>,
    /// The layer's type and its `const` value for an input shape.
    pub emit: fn(&Args, &ShapeInfo) -> Emitted,
}

/// The rank a kind needs, with the words for a message when the input has another.
pub(crate) struct InputRank {
    pub rank: usize,
    /// `a vector`.
    pub noun: &'static str,
    /// What to do about it; `{layer}` is replaced by the layer's name.
    pub hint: &'static str,
}

/// One option of a kind.
pub(crate) struct OptionSpec {
    pub name: &'static str,
    pub ty: OptionType,
    /// `None` for a required option.
    pub default: Option<Resolved>,
}

/// The type of an option's value.
#[derive(Clone, Copy)]
pub(crate) enum OptionType {
    /// A whole number of at least 1 (`units`).
    Count,
    /// A probability in `[0, 1)` (`rate`).
    Fraction,
    /// Any finite number (`alpha`).
    Float,
    /// `true` or `false`.
    Flag,
    /// An activation: `Relu`, `LeakyRelu(0.2)`.
    Activation,
    /// Whole numbers of at least 1, one per spatial axis of a layer with this many:
    /// `3` (every axis) or `[3, 2]` (`kernel`, `stride`, `size`, `scale`).
    Sizes(usize),
    /// Whole numbers of at least 0, one per spatial axis: `1` or `[1, 0]`.
    Margins(usize),
    /// A convolution's zero padding: `Valid`, `Same`, or margins.
    Padding(usize),
    /// A shape `[4, 8]`: 1 to 3 dimensions, each at least 1.
    Shape,
    /// One name from a fixed list (`merge: Sum`).
    Choice(&'static [&'static str]),
}

impl OptionType {
    /// What a value of this type is, for messages.
    pub(crate) fn describe(self) -> &'static str {
        match self {
            OptionType::Count => "a whole number of at least 1",
            OptionType::Fraction => "a number in [0, 1)",
            OptionType::Float => "a number",
            OptionType::Flag => "`true` or `false`",
            OptionType::Activation => "an activation such as `Relu`",
            OptionType::Sizes(1) => "a whole number of at least 1",
            OptionType::Sizes(_) => "a whole number of at least 1, or one per axis as in `[3, 3]`",
            OptionType::Margins(1) => "a whole number",
            OptionType::Margins(_) => "a whole number, or one per axis as in `[1, 0]`",
            OptionType::Padding(1) => "`Valid`, `Same` or a whole number",
            OptionType::Padding(_) => "`Valid`, `Same`, a whole number or one per axis as in `[1, 0]`",
            OptionType::Shape => "a shape such as `[16, 4, 4]`",
            OptionType::Choice(_) => "one of its named modes",
        }
    }

    /// Whether the option determines the layer's output shape, so that after an
    /// invalid value the shape is unknown rather than computed from the default.
    pub(crate) fn shapes_output(self) -> bool {
        matches!(self, OptionType::Sizes(_) | OptionType::Margins(_) | OptionType::Padding(_) | OptionType::Shape)
    }
}

/// A checked option value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Resolved {
    Count(usize),
    Float(f32),
    Flag(bool),
    Activation(Activation),
    /// Per-axis values (`Sizes`, `Margins`); a kind with one axis reads the first.
    Axes([usize; 2]),
    Padding(Padding),
    Shape(ShapeValue),
    /// An option left out whose value the kind derives from others (the `stride` of a
    /// pooling is its `size`).
    Derived,
    /// A name from an `OptionType::Choice` list.
    Choice(&'static str),
    /// A whole number given as a `const` item (`units: HIDDEN`), kept as written in
    /// [`Args::size`]; accepted for the options of [`CONST_SIZES`].
    Constant,
}

/// The options that accept a `const` item for their number (`units: HIDDEN`): those
/// whose shape arithmetic the expansion writes as `const` expressions.
pub(crate) const CONST_SIZES: &[(&str, &str)] = &[
    ("Dense", "units"),
    ("SequenceDense", "units"),
    ("SimpleRnn", "units"),
    ("Lstm", "units"),
    ("Gru", "units"),
    ("SimpleRnn", "layers"),
    ("Lstm", "layers"),
    ("Gru", "layers"),
    ("SimpleRnn", "truncate"),
    ("Lstm", "truncate"),
    ("Gru", "truncate"),
    ("Embedding", "vocab"),
    ("Embedding", "dim"),
    ("Conv1d", "filters"),
    ("Conv2d", "filters"),
    ("ConvTranspose2d", "filters"),
    ("Conv1d", "kernel"),
    ("Conv2d", "kernel"),
    ("ConvTranspose2d", "kernel"),
];

/// The zero padding of a convolution, as written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Padding {
    Valid,
    /// The output keeps the input's size (stride 1 only).
    Same,
    /// Zeros before and after, per axis.
    Explicit([usize; 2]),
}

/// A shape option: `rank` dimensions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ShapeValue {
    pub dims: [usize; 3],
    pub rank: usize,
}

/// `nn_core::Activation`, as the macro knows it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Activation {
    Identity,
    Relu,
    Relu6,
    LeakyRelu(f32),
    Sigmoid,
    Tanh,
    Softmax,
    Gelu,
    Elu(f32),
    Abs,
}

/// The activations by name, with the default of their parameter if they have one.
const ACTIVATIONS: &[(&str, Option<f32>)] = &[
    ("Identity", None),
    ("Relu", None),
    ("Relu6", None),
    ("LeakyRelu", Some(0.01)),
    ("Sigmoid", None),
    ("Tanh", None),
    ("Softmax", None),
    ("Gelu", None),
    ("Elu", Some(1.0)),
    ("Abs", None),
];

impl Activation {
    /// The activation called `name`, with `alpha` for those that take one.
    fn named(name: &str, alpha: f32) -> Option<Activation> {
        Some(match name {
            "Identity" => Activation::Identity,
            "Relu" => Activation::Relu,
            "Relu6" => Activation::Relu6,
            "LeakyRelu" => Activation::LeakyRelu(alpha),
            "Sigmoid" => Activation::Sigmoid,
            "Tanh" => Activation::Tanh,
            "Softmax" => Activation::Softmax,
            "Gelu" => Activation::Gelu,
            "Elu" => Activation::Elu(alpha),
            "Abs" => Activation::Abs,
            _ => return None,
        })
    }
}

impl ToTokens for Activation {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        tokens.extend(match *self {
            Activation::Identity => quote!(::nn_core::Activation::Identity),
            Activation::Relu => quote!(::nn_core::Activation::Relu),
            Activation::Relu6 => quote!(::nn_core::Activation::Relu6),
            Activation::LeakyRelu(a) => {
                let a = float(a);
                quote!(::nn_core::Activation::LeakyRelu(#a))
            }
            Activation::Sigmoid => quote!(::nn_core::Activation::Sigmoid),
            Activation::Tanh => quote!(::nn_core::Activation::Tanh),
            Activation::Softmax => quote!(::nn_core::Activation::Softmax),
            Activation::Gelu => quote!(::nn_core::Activation::Gelu),
            Activation::Elu(a) => {
                let a = float(a);
                quote!(::nn_core::Activation::Elu(#a))
            }
            Activation::Abs => quote!(::nn_core::Activation::Abs),
        });
    }
}

/// An `f32` literal expression, negative ones as `-` and a literal.
pub(crate) fn float(value: f32) -> TokenStream {
    let lit = Literal::f32_suffixed(value.abs());
    if value.is_sign_negative() {
        quote!(-#lit)
    } else {
        quote!(#lit)
    }
}

/// The type and value of a layer.
pub(crate) struct Emitted {
    pub ty: TokenStream,
    pub value: TokenStream,
}

/// The checked options of one layer, defaults filled in.
#[derive(Default)]
pub(crate) struct Args {
    values: Vec<(&'static str, Resolved)>,
    /// The `const` items of the options set to [`Resolved::Constant`].
    constants: Vec<(&'static str, syn::Path)>,
}

impl Args {
    /// Sets option `name` to the `const` item `path`.
    pub(crate) fn set_constant(&mut self, name: &'static str, path: syn::Path) {
        self.set(name, Resolved::Constant);
        self.constants.retain(|(n, _)| *n != name);
        self.constants.push((name, path));
    }

    /// The `const` item given for option `name`, if it is one.
    pub(crate) fn constant_path(&self, name: &str) -> Option<&syn::Path> {
        self.constants.iter().find(|(n, _)| *n == name && self.constant(name)).map(|(_, path)| path)
    }

    /// Whether option `name` is a `const` item, whose value the macro does not know.
    pub(crate) fn constant(&self, name: &str) -> bool {
        matches!(self.get(name), Some(Resolved::Constant))
    }

    /// A whole-number option as a const generic argument: its literal, or `{ PATH }`
    /// for a `const` item, spanned where the user wrote it.
    pub(crate) fn size(&self, name: &str) -> TokenStream {
        match self.constants.iter().find(|(n, _)| *n == name) {
            Some((_, path)) if self.constant(name) => quote!({ #path }),
            _ => {
                let n = Literal::usize_unsuffixed(self.count(name));
                quote!(#n)
            }
        }
    }

    pub(crate) fn set(&mut self, name: &'static str, value: Resolved) {
        self.values.retain(|(n, _)| *n != name);
        self.values.push((name, value));
    }

    fn get(&self, name: &str) -> Option<Resolved> {
        self.values.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
    }

    /// Every option is set before a kind's functions run; the fallbacks only keep them
    /// total.
    pub(crate) fn count(&self, name: &str) -> usize {
        match self.get(name) {
            Some(Resolved::Count(n)) => n,
            _ => 1,
        }
    }

    pub(crate) fn float(&self, name: &str) -> f32 {
        match self.get(name) {
            Some(Resolved::Float(x)) => x,
            _ => 0.0,
        }
    }

    pub(crate) fn flag(&self, name: &str) -> bool {
        matches!(self.get(name), Some(Resolved::Flag(true)))
    }

    pub(crate) fn activation(&self, name: &str) -> Activation {
        match self.get(name) {
            Some(Resolved::Activation(a)) => a,
            _ => Activation::Identity,
        }
    }

    pub(crate) fn choice(&self, name: &str) -> &'static str {
        match self.get(name) {
            Some(Resolved::Choice(c)) => c,
            _ => "",
        }
    }

    pub(crate) fn axes(&self, name: &str) -> [usize; 2] {
        match self.get(name) {
            Some(Resolved::Axes(a)) => a,
            _ => [1, 1],
        }
    }

    pub(crate) fn padding(&self, name: &str) -> Padding {
        match self.get(name) {
            Some(Resolved::Padding(p)) => p,
            _ => Padding::Valid,
        }
    }

    pub(crate) fn shape(&self, name: &str) -> Vec<usize> {
        match self.get(name) {
            Some(Resolved::Shape(s)) => s.dims[..s.rank].to_vec(),
            _ => vec![1],
        }
    }

    /// Whether option `name` was left out and is derived by the kind.
    pub(crate) fn derived(&self, name: &str) -> bool {
        matches!(self.get(name), Some(Resolved::Derived))
    }
}

const VECTOR: InputRank =
    InputRank { rank: 1, noun: "a vector", hint: "add `Flatten` before `{layer}` to turn its input into a vector" };

/// Every built-in kind.
pub(crate) static KINDS: &[Kind] = &[
    Kind {
        name: "Dense",
        options: &[
            OptionSpec { name: "units", ty: OptionType::Count, default: None },
            OptionSpec {
                name: "activation",
                ty: OptionType::Activation,
                default: Some(Resolved::Activation(Activation::Identity)),
            },
            OptionSpec { name: "bias", ty: OptionType::Flag, default: Some(Resolved::Flag(true)) },
        ],
        input_rank: Some(VECTOR),
        shape: |args, _| {
            Ok(if args.constant("units") {
                let units = args.size("units");
                ShapeInfo::Opaque(quote!(::nn_core::Shape1<#units>))
            } else {
                ShapeInfo::Known(vec![args.count("units")])
            })
        },
        emit: |args, input| {
            let features = input.len();
            let units = args.size("units");
            let bias = if args.flag("bias") { quote!() } else { quote!(, false) };
            let activation = args.activation("activation");
            Emitted {
                ty: quote!(::nn_core::layers::Dense<#features, #units #bias>),
                value: quote!(::nn_core::layers::Dense::new(#activation)),
            }
        },
    },
    Kind {
        name: "Dropout",
        options: &[OptionSpec { name: "rate", ty: OptionType::Fraction, default: None }],
        input_rank: None,
        shape: same_shape,
        emit: |args, input| {
            let shape = input.ty();
            let rate = float(args.float("rate"));
            Emitted {
                ty: quote!(::nn_core::layers::Dropout<#shape>),
                value: quote!(::nn_core::layers::Dropout::new(#rate)),
            }
        },
    },
    Kind {
        name: "FakeQuant",
        options: &[OptionSpec { name: "momentum", ty: OptionType::Fraction, default: Some(Resolved::Float(0.01)) }],
        input_rank: None,
        shape: same_shape,
        emit: |args, input| {
            let shape = input.ty();
            let momentum = float(args.float("momentum"));
            Emitted {
                ty: quote!(::nn_core::layers::FakeQuant<#shape>),
                value: quote!(::nn_core::layers::FakeQuant::new(#momentum)),
            }
        },
    },
    activation("Identity", &[], |_, s| act(s, Activation::Identity)),
    activation("Relu", &[], |_, s| act(s, Activation::Relu)),
    activation("Relu6", &[], |_, s| act(s, Activation::Relu6)),
    activation("LeakyRelu", ALPHA_LEAKY, |a, s| act(s, Activation::LeakyRelu(a.float("alpha")))),
    activation("Sigmoid", &[], |_, s| act(s, Activation::Sigmoid)),
    activation("Tanh", &[], |_, s| act(s, Activation::Tanh)),
    activation("Softmax", &[], |_, s| act(s, Activation::Softmax)),
    activation("Gelu", &[], |_, s| act(s, Activation::Gelu)),
    activation("Elu", ALPHA_ELU, |a, s| act(s, Activation::Elu(a.float("alpha")))),
    activation("Abs", &[], |_, s| act(s, Activation::Abs)),
    conv_kinds::CONV1D,
    conv_kinds::CONV2D,
    conv_kinds::CONV_TRANSPOSE2D,
    conv_kinds::MAX_POOL1D,
    conv_kinds::MAX_POOL2D,
    conv_kinds::AVG_POOL1D,
    conv_kinds::AVG_POOL2D,
    conv_kinds::GLOBAL_AVG_POOL1D,
    conv_kinds::GLOBAL_MAX_POOL1D,
    conv_kinds::GLOBAL_AVG_POOL2D,
    conv_kinds::GLOBAL_MAX_POOL2D,
    conv_kinds::UPSAMPLE,
    conv_kinds::UPSAMPLE1D,
    conv_kinds::FLATTEN,
    conv_kinds::RESHAPE,
    conv_kinds::BATCH_NORM1D,
    conv_kinds::BATCH_NORM2D,
    crate::rnn_kinds::SIMPLE_RNN,
    crate::rnn_kinds::LSTM,
    crate::rnn_kinds::GRU,
    crate::rnn_kinds::EMBEDDING,
    crate::rnn_kinds::SEQUENCE_DENSE,
    MULTI_HEAD_ATTENTION,
    LAYER_NORM,
    POSITIONAL_ENCODING,
    LEARNED_POSITIONAL,
    FEED_FORWARD,
    TRANSFORMER_ENCODER_LAYER,
    TRANSFORMER_ENCODER,
];

const ALPHA_LEAKY: &[OptionSpec] =
    &[OptionSpec { name: "alpha", ty: OptionType::Float, default: Some(Resolved::Float(0.01)) }];
const ALPHA_ELU: &[OptionSpec] =
    &[OptionSpec { name: "alpha", ty: OptionType::Float, default: Some(Resolved::Float(1.0)) }];

/// An activation as a layer (`Act<S>`): any shape, shape-preserving.
const fn activation(
    name: &'static str,
    options: &'static [OptionSpec],
    emit: fn(&Args, &ShapeInfo) -> Emitted,
) -> Kind {
    Kind { name, options, input_rank: None, shape: same_shape, emit }
}

fn act(input: &ShapeInfo, activation: Activation) -> Emitted {
    let shape = input.ty();
    Emitted { ty: quote!(::nn_core::layers::Act<#shape>), value: quote!(::nn_core::layers::Act::new(#activation)) }
}

fn same_shape(_: &Args, input: &ShapeInfo) -> Result<ShapeInfo, String> {
    Ok(input.clone())
}

/// The kind called `name`.
pub(crate) fn find(name: &str) -> Option<&'static Kind> {
    KINDS.iter().find(|k| k.name == name)
}

/// The names of all kinds.
pub(crate) fn names() -> impl Iterator<Item = &'static str> + Clone {
    KINDS.iter().map(|k| k.name)
}

/// Whether `path` names a `const` item by Rust's convention: its last segment in upper
/// case (`HIDDEN`, `config::HIDDEN_2`), unlike an activation or a mode (`Relu`).
fn is_const_name(path: &syn::Path) -> bool {
    path.segments.last().is_some_and(|s| {
        let name = s.ident.to_string();
        s.arguments.is_none()
            && name.chars().any(|c| c.is_ascii_uppercase())
            && name.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
    })
}

/// Checks an option value against its type.
pub(crate) fn resolve(spec: &OptionSpec, value: &Value) -> Result<Resolved, String> {
    let name = spec.name;
    match spec.ty {
        OptionType::Count => match value {
            Value::Int { minus, lit } => {
                let n: usize =
                    lit.base10_parse().map_err(|_| format!("`{name}` is too large, found {}", value.text()))?;
                if n == 0 || minus.is_some() {
                    Err(format!("`{name}` must be at least 1, found {}", value.text()))
                } else {
                    Ok(Resolved::Count(n))
                }
            }
            Value::Float { .. } => Err(format!("`{name}` must be a whole number, found {}", value.text())),
            // A `const` item (`HIDDEN`, `config::HIDDEN`): its value is checked by the
            // type system.
            Value::Name { path, args: None } if is_const_name(path) => Ok(Resolved::Constant),
            _ => Err(format!("`{name}` expects a whole number, found `{}`", value.text())),
        },
        OptionType::Fraction => {
            let x = number(name, value)?;
            if (0.0..1.0).contains(&x) {
                Ok(Resolved::Float(x))
            } else {
                Err(format!("`{name}` must be in [0, 1), found {}", value.text()))
            }
        }
        OptionType::Float => number(name, value).map(Resolved::Float),
        OptionType::Flag => match value {
            Value::Bool(b) => Ok(Resolved::Flag(b.value)),
            _ => Err(format!("`{name}` expects `true` or `false`, found `{}`", value.text())),
        },
        OptionType::Activation => activation_value(name, value).map(Resolved::Activation),
        // A `const` item for every axis (`kernel: K`).
        OptionType::Sizes(_) if matches!(value, Value::Name { path, args: None } if is_const_name(path)) => {
            Ok(Resolved::Constant)
        }
        OptionType::Sizes(axes) => per_axis(spec, value, axes, 1).map(Resolved::Axes),
        OptionType::Margins(axes) => per_axis(spec, value, axes, 0).map(Resolved::Axes),
        OptionType::Padding(axes) => match value {
            Value::Name { path, args: None } if path.is_ident("Valid") => Ok(Resolved::Padding(Padding::Valid)),
            Value::Name { path, args: None } if path.is_ident("Same") => Ok(Resolved::Padding(Padding::Same)),
            Value::Name { path, .. } => {
                let word = path.segments.last().map(|s| s.ident.to_string()).unwrap_or_default();
                let hint = match suggest::closest(&word, ["Valid", "Same"]) {
                    Some(c) => format!("did you mean `{c}`?"),
                    None => format!("expected {}", spec.ty.describe()),
                };
                Err(format!("unknown padding `{}`; {hint}", value.text()))
            }
            _ => per_axis(spec, value, axes, 0).map(|a| Resolved::Padding(Padding::Explicit(a))),
        },
        OptionType::Shape => {
            let Value::List { items, .. } = value else {
                return Err(format!("`{name}` expects {}, found `{}`", spec.ty.describe(), value.text()));
            };
            if items.is_empty() || items.len() > 3 {
                return Err(format!("`{name}` has 1 to 3 dimensions, found {}", items.len()));
            }
            let mut dims = [1; 3];
            for (d, item) in dims.iter_mut().zip(items) {
                *d = whole(name, item, 1)?;
            }
            Ok(Resolved::Shape(ShapeValue { dims, rank: items.len() }))
        }
        OptionType::Choice(names) => {
            let word = match value {
                Value::Name { path, args: None } => path.get_ident().map(|i| i.to_string()),
                _ => None,
            };
            match word.as_deref().and_then(|w| names.iter().find(|n| **n == w)) {
                Some(found) => Ok(Resolved::Choice(found)),
                None => {
                    let hint = match word.as_deref().and_then(|w| suggest::closest(w, names.iter().copied())) {
                        Some(c) => format!("did you mean `{c}`?"),
                        None => format!("expected {}", suggest::one_of(names.iter().copied())),
                    };
                    Err(format!("unknown `{name}` `{}`; {hint}", value.text()))
                }
            }
        }
    }
}

/// A whole-number literal of at least `min`.
fn whole(name: &str, value: &Value, min: usize) -> Result<usize, String> {
    match value {
        Value::Int { minus, lit } => {
            let n: usize = lit.base10_parse().map_err(|_| format!("`{name}` is too large, found {}", value.text()))?;
            if n < min || minus.is_some() && n > 0 {
                Err(format!("`{name}` must be at least {min}, found {}", value.text()))
            } else {
                Ok(n)
            }
        }
        Value::Float { .. } => Err(format!("`{name}` must be a whole number, found {}", value.text())),
        _ => Err(format!("`{name}` expects a whole number, found `{}`", value.text())),
    }
}

/// `n` (every axis) or `[a, b]` (one per axis), each at least `min`.
fn per_axis(spec: &OptionSpec, value: &Value, axes: usize, min: usize) -> Result<[usize; 2], String> {
    let name = spec.name;
    match value {
        Value::List { items, .. } => {
            if items.len() != axes {
                let per = if axes == 1 { "one number" } else { "one number per axis" };
                return Err(format!(
                    "`{name}` takes {per} ({axes} for this layer), found {} in `{}`",
                    items.len(),
                    value.text()
                ));
            }
            let mut out = [0; 2];
            for (o, item) in out.iter_mut().zip(items) {
                *o = whole(name, item, min)?;
            }
            if axes == 1 {
                out[1] = out[0];
            }
            Ok(out)
        }
        Value::Int { .. } | Value::Float { .. } => whole(name, value, min).map(|n| [n, n]),
        _ => Err(format!("`{name}` expects {}, found `{}`", spec.ty.describe(), value.text())),
    }
}

/// An integer or float literal, possibly negative, as a finite `f32`.
fn number(name: &str, value: &Value) -> Result<f32, String> {
    let (negative, parsed) = match value {
        Value::Int { minus, lit } => (minus.is_some(), lit.base10_parse::<f64>()),
        Value::Float { minus, lit } => (minus.is_some(), lit.base10_parse::<f64>()),
        _ => return Err(format!("`{name}` expects a number, found `{}`", value.text())),
    };
    let x = parsed.map_err(|e| format!("`{name}`: {e}"))? as f32;
    if !x.is_finite() {
        return Err(format!("`{name}` must be a finite `f32`, found {}", value.text()));
    }
    Ok(if negative { -x } else { x })
}

/// `Relu`, `Activation::Relu`, `LeakyRelu`, `LeakyRelu(0.2)`.
fn activation_value(name: &str, value: &Value) -> Result<Activation, String> {
    let all = || ACTIVATIONS.iter().map(|(n, _)| *n);
    let Value::Name { path, args } = value else {
        return Err(format!("`{name}` expects an activation ({}), found `{}`", suggest::one_of(all()), value.text()));
    };
    let Some(last) = path.segments.last() else {
        return Err(format!("`{name}` expects an activation"));
    };
    let word = last.ident.to_string();
    let Some(&(found, default)) = ACTIVATIONS.iter().find(|(n, _)| *n == word) else {
        let hint = match suggest::closest(&word, all()) {
            Some(c) => format!("did you mean `{c}`?"),
            None => format!("expected {}", suggest::one_of(all())),
        };
        return Err(format!("unknown activation `{word}`; {hint}"));
    };
    let alpha = match (default, args) {
        (_, None) => default.unwrap_or(0.0),
        (None, Some(_)) => return Err(format!("`{found}` takes no argument")),
        (Some(default), Some((_, args))) => match args.as_slice() {
            [] => default,
            [alpha] => number("alpha", alpha)?,
            _ => return Err(format!("`{found}` takes one argument, its `alpha`")),
        },
    };
    Activation::named(found, alpha).ok_or_else(|| format!("unknown activation `{word}`"))
}

// ---------------------------------------------------------------------------------------
// Attention and the Transformer encoder: `MultiHeadAttention`, `LayerNorm`,
// `PositionalEncoding`, `LearnedPositional`, `FeedForward`, `TransformerEncoderLayer`
// and `TransformerEncoder`. All but `LayerNorm` take a sequence `[time, width]` and
// return the same shape; `LayerNorm` normalises the last dimension of any shape.

/// A check of one option against the input shape, reported at that option (`heads: 3`)
/// when the user wrote it, else at the layer's kind. Runs after the rank check, on
/// resolved options.
pub(crate) struct OptionCheck {
    pub kind: &'static str,
    pub option: &'static str,
    pub check: fn(&Args, &ShapeInfo) -> Result<(), String>,
}

/// The option checks of kind `kind`.
pub(crate) fn option_checks(kind: &str) -> impl Iterator<Item = &'static OptionCheck> + '_ {
    OPTION_CHECKS.iter().filter(move |c| c.kind == kind)
}

static OPTION_CHECKS: &[OptionCheck] = &[
    OptionCheck { kind: "MultiHeadAttention", option: "heads", check: heads_divide_width },
    OptionCheck { kind: "TransformerEncoderLayer", option: "heads", check: heads_divide_width },
    OptionCheck { kind: "TransformerEncoder", option: "heads", check: heads_divide_width },
    OptionCheck { kind: "LayerNorm", option: "eps", check: positive_eps },
    OptionCheck { kind: "TransformerEncoderLayer", option: "eps", check: positive_eps },
    OptionCheck { kind: "TransformerEncoder", option: "eps", check: positive_eps },
    OptionCheck { kind: "FeedForward", option: "activation", check: elementwise_activation },
    OptionCheck { kind: "SimpleRnn", option: "merge", check: crate::rnn_kinds::merge_needs_two_directions },
    OptionCheck { kind: "Lstm", option: "merge", check: crate::rnn_kinds::merge_needs_two_directions },
    OptionCheck { kind: "Gru", option: "merge", check: crate::rnn_kinds::merge_needs_two_directions },
    OptionCheck { kind: "TransformerEncoderLayer", option: "activation", check: elementwise_activation },
    OptionCheck { kind: "TransformerEncoder", option: "activation", check: elementwise_activation },
];

/// The heads split the width into `width / heads` features each.
fn heads_divide_width(args: &Args, input: &ShapeInfo) -> Result<(), String> {
    let heads = args.count("heads");
    let ShapeInfo::Known(dims) = input else { return Ok(()) };
    let width = dims.last().copied().unwrap_or(1);
    if width.is_multiple_of(heads) {
        return Ok(());
    }
    let divisors: Vec<String> = (1..=width).filter(|d| width % d == 0).map(|d| d.to_string()).collect();
    Err(format!(
        "`heads: {heads}` does not divide the model width {width} (the input is {}): each head gets \
         `width / heads` features; the divisors of {width} are {}",
        suggest::dims(dims),
        divisors.join(", ")
    ))
}

fn positive_eps(args: &Args, _: &ShapeInfo) -> Result<(), String> {
    let eps = args.float("eps");
    if eps > 0.0 {
        Ok(())
    } else {
        Err(format!("`eps` must be positive (it keeps `1 / sqrt(var + eps)` finite), found {eps}"))
    }
}

fn elementwise_activation(args: &Args, _: &ShapeInfo) -> Result<(), String> {
    match args.activation("activation") {
        Activation::Softmax => Err(String::from(
            "the feed-forward activation acts on each value alone; `Softmax` normalises a whole row \
             (use `Relu` or `Gelu`, as PyTorch)",
        )),
        _ => Ok(()),
    }
}

const SEQUENCE_INPUT: InputRank = InputRank {
    rank: 2,
    noun: "a sequence `[time, width]`",
    hint: "attention relates the time steps of a sequence: give `{layer}` a `[time, width]` input, for example \
           from `Embedding` or `Reshape { shape: [time, width] }`",
};

/// Dimension `i` of the input as a const generic argument: a literal, or an
/// expression over the `DIMS` of a shape known only as a type.
fn attention_dim(input: &ShapeInfo, i: usize) -> TokenStream {
    match input {
        ShapeInfo::Known(dims) => {
            let d = Literal::usize_unsuffixed(dims.get(i).copied().unwrap_or(1));
            quote!(#d)
        }
        // A shape of another rank is reported by the rank check alone: a missing
        // dimension is 0 here, which no const check of the layer rejects.
        ShapeInfo::Opaque(ty) => quote!({
            let dims = <#ty as ::nn_core::Shape>::DIMS;
            if dims.len() > #i { dims[#i] } else { 0 }
        }),
        ShapeInfo::Unknown => quote!(1),
    }
}

const HEADS: OptionSpec = OptionSpec { name: "heads", ty: OptionType::Count, default: None };
const CAUSAL: OptionSpec = OptionSpec { name: "causal", ty: OptionType::Flag, default: Some(Resolved::Flag(false)) };
const EPS: OptionSpec = OptionSpec { name: "eps", ty: OptionType::Float, default: Some(Resolved::Float(1e-5)) };
const FF: OptionSpec = OptionSpec { name: "ff", ty: OptionType::Count, default: None };
const ENCODER_LAYERS: OptionSpec =
    OptionSpec { name: "layers", ty: OptionType::Count, default: Some(Resolved::Count(1)) };
const NORM_FIRST: OptionSpec =
    OptionSpec { name: "norm_first", ty: OptionType::Flag, default: Some(Resolved::Flag(false)) };
const FF_ACTIVATION: OptionSpec = OptionSpec {
    name: "activation",
    ty: OptionType::Activation,
    default: Some(Resolved::Activation(Activation::Relu)),
};
/// PyTorch's default for `nn.TransformerEncoderLayer`.
const ENCODER_DROPOUT: OptionSpec =
    OptionSpec { name: "dropout", ty: OptionType::Fraction, default: Some(Resolved::Float(0.1)) };
const NO_DROPOUT: OptionSpec =
    OptionSpec { name: "dropout", ty: OptionType::Fraction, default: Some(Resolved::Float(0.0)) };

const MULTI_HEAD_ATTENTION_OPTIONS: [OptionSpec; 3] = [HEADS, CAUSAL, NO_DROPOUT];
const ENCODER_LAYER_OPTIONS: [OptionSpec; 7] = [HEADS, FF, NORM_FIRST, FF_ACTIVATION, ENCODER_DROPOUT, CAUSAL, EPS];
const ENCODER_OPTIONS: [OptionSpec; 8] =
    [HEADS, FF, ENCODER_LAYERS, NORM_FIRST, FF_ACTIVATION, ENCODER_DROPOUT, CAUSAL, EPS];
const FEED_FORWARD_OPTIONS: [OptionSpec; 3] =
    [OptionSpec { name: "units", ty: OptionType::Count, default: None }, FF_ACTIVATION, NO_DROPOUT];

const MULTI_HEAD_ATTENTION: Kind = Kind {
    name: "MultiHeadAttention",
    options: &MULTI_HEAD_ATTENTION_OPTIONS,
    input_rank: Some(SEQUENCE_INPUT),
    shape: same_shape,
    emit: |args, input| {
        let (t, d) = (attention_dim(input, 0), attention_dim(input, 1));
        let heads = Literal::usize_unsuffixed(args.count("heads"));
        let causal = args.flag("causal");
        let dropout = float(args.float("dropout"));
        Emitted {
            ty: quote!(::nn_core::layers::MultiHeadAttention<#t, #d, #heads>),
            value: quote!(::nn_core::layers::MultiHeadAttention::new(#causal, #dropout)),
        }
    },
};

const LAYER_NORM: Kind = Kind {
    name: "LayerNorm",
    options: &[EPS],
    input_rank: None,
    shape: same_shape,
    emit: |args, input| {
        let shape = input.ty();
        let eps = float(args.float("eps"));
        Emitted {
            ty: quote!(::nn_core::layers::LayerNorm<#shape>),
            value: quote!(::nn_core::layers::LayerNorm::new(#eps)),
        }
    },
};

const POSITIONAL_ENCODING: Kind = Kind {
    name: "PositionalEncoding",
    options: &[],
    input_rank: Some(SEQUENCE_INPUT),
    shape: same_shape,
    emit: |_, input| {
        let (t, d) = (attention_dim(input, 0), attention_dim(input, 1));
        Emitted {
            ty: quote!(::nn_core::layers::PositionalEncoding<#t, #d>),
            value: quote!(::nn_core::layers::PositionalEncoding::new()),
        }
    },
};

const LEARNED_POSITIONAL: Kind = Kind {
    name: "LearnedPositional",
    options: &[],
    input_rank: Some(SEQUENCE_INPUT),
    shape: same_shape,
    emit: |_, input| {
        let (t, d) = (attention_dim(input, 0), attention_dim(input, 1));
        Emitted {
            ty: quote!(::nn_core::layers::LearnedPositional<#t, #d>),
            value: quote!(::nn_core::layers::LearnedPositional::new()),
        }
    },
};

const FEED_FORWARD: Kind = Kind {
    name: "FeedForward",
    options: &FEED_FORWARD_OPTIONS,
    input_rank: Some(SEQUENCE_INPUT),
    shape: same_shape,
    emit: |args, input| {
        let (t, d) = (attention_dim(input, 0), attention_dim(input, 1));
        let units = Literal::usize_unsuffixed(args.count("units"));
        let activation = args.activation("activation");
        let dropout = float(args.float("dropout"));
        Emitted {
            ty: quote!(::nn_core::layers::FeedForward<#t, #d, #units>),
            value: quote!(::nn_core::layers::FeedForward::new(#activation, #dropout)),
        }
    },
};

/// The `TransformerEncoderLayer` value of an encoder kind's options.
fn encoder_layer_value(args: &Args) -> TokenStream {
    let norm_first = args.flag("norm_first");
    let activation = args.activation("activation");
    let dropout = float(args.float("dropout"));
    let causal = args.flag("causal");
    let eps = float(args.float("eps"));
    quote!(::nn_core::layers::TransformerEncoderLayer::new(#norm_first, #activation, #dropout)
        .with_causal(#causal)
        .with_eps(#eps))
}

const TRANSFORMER_ENCODER_LAYER: Kind = Kind {
    name: "TransformerEncoderLayer",
    options: &ENCODER_LAYER_OPTIONS,
    input_rank: Some(SEQUENCE_INPUT),
    shape: same_shape,
    emit: |args, input| {
        let (t, d) = (attention_dim(input, 0), attention_dim(input, 1));
        let heads = Literal::usize_unsuffixed(args.count("heads"));
        let ff = Literal::usize_unsuffixed(args.count("ff"));
        Emitted {
            ty: quote!(::nn_core::layers::TransformerEncoderLayer<#t, #d, #heads, #ff>),
            value: encoder_layer_value(args),
        }
    },
};

const TRANSFORMER_ENCODER: Kind = Kind {
    name: "TransformerEncoder",
    options: &ENCODER_OPTIONS,
    input_rank: Some(SEQUENCE_INPUT),
    shape: same_shape,
    emit: |args, input| {
        let (t, d) = (attention_dim(input, 0), attention_dim(input, 1));
        let heads = Literal::usize_unsuffixed(args.count("heads"));
        let ff = Literal::usize_unsuffixed(args.count("ff"));
        let layers = Literal::usize_unsuffixed(args.count("layers"));
        let layer = encoder_layer_value(args);
        Emitted {
            ty: quote!(::nn_core::layers::TransformerEncoder<#t, #d, #heads, #ff, #layers>),
            value: quote!(::nn_core::layers::TransformerEncoder::new(#layer)),
        }
    },
};
