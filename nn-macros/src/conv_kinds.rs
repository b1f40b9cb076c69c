//! The kinds of the convolution family: convolutions, pooling, global pooling,
//! upsampling, `Flatten`, `Reshape` and batch norm, as entries of [`crate::kinds::KINDS`].
//!
//! Their shape functions compute the output sizes with PyTorch's formulas and reject
//! what cannot work (a kernel or window larger than the padded input, a zero-sized
//! output, `Same` padding with a stride, an output padding as large as the stride) in
//! the user's terms. When the input is only a type (a network used as a layer), the
//! sizes become `const` expressions over its `DIMS`, and the layer's `const fn new`
//! checks them when the network is compiled.
use proc_macro2::{Literal, TokenStream};
use quote::quote;

use crate::ir::{element_count, ShapeInfo};
use crate::kinds::{float, Args, Emitted, InputRank, Kind, OptionSpec, OptionType, Padding, Resolved};
use crate::suggest;

const IMAGE: InputRank = InputRank {
    rank: 3,
    noun: "an image `[channels, height, width]`",
    hint: "add `Reshape { shape: [channels, height, width] }` before `{layer}`",
};

const SIGNAL: InputRank = InputRank {
    rank: 2,
    noun: "a signal `[channels, length]`",
    hint: "add `Reshape { shape: [channels, length] }` before `{layer}`",
};

const ONES: Option<Resolved> = Some(Resolved::Axes([1, 1]));
const ZEROS: Option<Resolved> = Some(Resolved::Axes([0, 0]));
const BIAS: OptionSpec = OptionSpec { name: "bias", ty: OptionType::Flag, default: Some(Resolved::Flag(true)) };
const FILTERS: OptionSpec = OptionSpec { name: "filters", ty: OptionType::Count, default: None };

const fn conv_options(axes: usize) -> [OptionSpec; 7] {
    [
        FILTERS,
        OptionSpec { name: "kernel", ty: OptionType::Sizes(axes), default: None },
        OptionSpec { name: "stride", ty: OptionType::Sizes(axes), default: ONES },
        OptionSpec { name: "padding", ty: OptionType::Padding(axes), default: Some(Resolved::Padding(Padding::Valid)) },
        OptionSpec { name: "dilation", ty: OptionType::Sizes(axes), default: ONES },
        OptionSpec { name: "groups", ty: OptionType::Count, default: Some(Resolved::Count(1)) },
        BIAS,
    ]
}

const CONV1D_OPTIONS: [OptionSpec; 7] = conv_options(1);
const CONV2D_OPTIONS: [OptionSpec; 7] = conv_options(2);

const TRANSPOSE_OPTIONS: [OptionSpec; 7] = [
    FILTERS,
    OptionSpec { name: "kernel", ty: OptionType::Sizes(2), default: None },
    OptionSpec { name: "stride", ty: OptionType::Sizes(2), default: ONES },
    OptionSpec { name: "padding", ty: OptionType::Margins(2), default: ZEROS },
    OptionSpec { name: "output_padding", ty: OptionType::Margins(2), default: ZEROS },
    OptionSpec { name: "dilation", ty: OptionType::Sizes(2), default: ONES },
    BIAS,
];

const fn pool_options(axes: usize) -> [OptionSpec; 3] {
    [
        OptionSpec { name: "size", ty: OptionType::Sizes(axes), default: None },
        OptionSpec { name: "stride", ty: OptionType::Sizes(axes), default: Some(Resolved::Derived) },
        OptionSpec { name: "padding", ty: OptionType::Margins(axes), default: ZEROS },
    ]
}

const POOL1D_OPTIONS: [OptionSpec; 3] = pool_options(1);
const POOL2D_OPTIONS: [OptionSpec; 3] = pool_options(2);

const BATCH_NORM_OPTIONS: [OptionSpec; 3] = [
    OptionSpec { name: "momentum", ty: OptionType::Float, default: Some(Resolved::Float(0.1)) },
    OptionSpec { name: "eps", ty: OptionType::Float, default: Some(Resolved::Float(1e-5)) },
    OptionSpec { name: "inference", ty: OptionType::Flag, default: Some(Resolved::Flag(false)) },
];

pub(crate) const CONV1D: Kind = Kind {
    name: "Conv1d",
    options: &CONV1D_OPTIONS,
    input_rank: Some(SIGNAL),
    shape: |args, input| conv(args, input, 1).map(|p| p.output),
    emit: |args, input| emit_conv(args, input, 1),
};

pub(crate) const CONV2D: Kind = Kind {
    name: "Conv2d",
    options: &CONV2D_OPTIONS,
    input_rank: Some(IMAGE),
    shape: |args, input| conv(args, input, 2).map(|p| p.output),
    emit: |args, input| emit_conv(args, input, 2),
};

pub(crate) const CONV_TRANSPOSE2D: Kind = Kind {
    name: "ConvTranspose2d",
    options: &TRANSPOSE_OPTIONS,
    input_rank: Some(IMAGE),
    shape: |args, input| conv_transpose(args, input).map(|p| p.output),
    emit: emit_conv_transpose,
};

pub(crate) const MAX_POOL1D: Kind = Kind {
    name: "MaxPool1d",
    options: &POOL1D_OPTIONS,
    input_rank: Some(SIGNAL),
    shape: |args, input| pool(args, input, 1).map(|p| p.output),
    emit: |args, input| emit_pool(args, input, "MaxPool1d", 1),
};

pub(crate) const MAX_POOL2D: Kind = Kind {
    name: "MaxPool2d",
    options: &POOL2D_OPTIONS,
    input_rank: Some(IMAGE),
    shape: |args, input| pool(args, input, 2).map(|p| p.output),
    emit: |args, input| emit_pool(args, input, "MaxPool2d", 2),
};

pub(crate) const AVG_POOL1D: Kind = Kind {
    name: "AvgPool1d",
    options: &POOL1D_OPTIONS,
    input_rank: Some(SIGNAL),
    shape: |args, input| pool(args, input, 1).map(|p| p.output),
    emit: |args, input| emit_pool(args, input, "AvgPool1d", 1),
};

pub(crate) const AVG_POOL2D: Kind = Kind {
    name: "AvgPool2d",
    options: &POOL2D_OPTIONS,
    input_rank: Some(IMAGE),
    shape: |args, input| pool(args, input, 2).map(|p| p.output),
    emit: |args, input| emit_pool(args, input, "AvgPool2d", 2),
};

pub(crate) const GLOBAL_AVG_POOL1D: Kind = Kind {
    name: "GlobalAvgPool1d",
    options: &[],
    input_rank: Some(SIGNAL),
    shape: global_shape,
    emit: |_, input| emit_global(input, "GlobalAvgPool1d"),
};
pub(crate) const GLOBAL_MAX_POOL1D: Kind = Kind {
    name: "GlobalMaxPool1d",
    options: &[],
    input_rank: Some(SIGNAL),
    shape: global_shape,
    emit: |_, input| emit_global(input, "GlobalMaxPool1d"),
};
pub(crate) const GLOBAL_AVG_POOL2D: Kind = Kind {
    name: "GlobalAvgPool2d",
    options: &[],
    input_rank: Some(IMAGE),
    shape: global_shape,
    emit: |_, input| emit_global(input, "GlobalAvgPool2d"),
};
pub(crate) const GLOBAL_MAX_POOL2D: Kind = Kind {
    name: "GlobalMaxPool2d",
    options: &[],
    input_rank: Some(IMAGE),
    shape: global_shape,
    emit: |_, input| emit_global(input, "GlobalMaxPool2d"),
};

pub(crate) const UPSAMPLE: Kind = Kind {
    name: "Upsample",
    options: &[OptionSpec { name: "scale", ty: OptionType::Sizes(2), default: None }],
    input_rank: Some(IMAGE),
    shape: |args, input| Ok(upsample(args, input, 2).output),
    emit: |args, input| emit_upsample(args, input, 2),
};

pub(crate) const UPSAMPLE1D: Kind = Kind {
    name: "Upsample1d",
    options: &[OptionSpec { name: "scale", ty: OptionType::Sizes(1), default: None }],
    input_rank: Some(SIGNAL),
    shape: |args, input| Ok(upsample(args, input, 1).output),
    emit: |args, input| emit_upsample(args, input, 1),
};

pub(crate) const FLATTEN: Kind = Kind {
    name: "Flatten",
    options: &[],
    input_rank: None,
    shape: |_, input| {
        Ok(match input {
            ShapeInfo::Known(dims) => ShapeInfo::Known(vec![element_count(dims)]),
            ShapeInfo::Opaque(_) => ShapeInfo::Opaque(shape_tokens(&[Dim::Expr(len_of(input))])),
            ShapeInfo::Unknown => ShapeInfo::Unknown,
        })
    },
    emit: |_, input| {
        let (shape, len) = (input.ty(), input.len());
        Emitted {
            ty: quote!(::nn_core::layers::Flatten<#shape, #len>),
            value: quote!(::nn_core::layers::Flatten::new()),
        }
    },
};

pub(crate) const RESHAPE: Kind = Kind {
    name: "Reshape",
    options: &[OptionSpec { name: "shape", ty: OptionType::Shape, default: None }],
    input_rank: None,
    shape: |args, input| {
        let shape = args.shape("shape");
        if let ShapeInfo::Known(dims) = input {
            let (from, to) = (element_count(dims), element_count(&shape));
            if from != to {
                return Err(format!(
                    "`Reshape` to {} needs {to} elements, but its input {} has {from}",
                    suggest::dims(&shape),
                    suggest::dims(dims)
                ));
            }
        }
        Ok(ShapeInfo::Known(shape))
    },
    emit: |args, input| {
        let (from, to) = (input.ty(), ShapeInfo::Known(args.shape("shape")).ty());
        Emitted { ty: quote!(::nn_core::layers::Reshape<#from, #to>), value: quote!(::nn_core::layers::Reshape::new()) }
    },
};

pub(crate) const BATCH_NORM1D: Kind = Kind {
    name: "BatchNorm1d",
    options: &BATCH_NORM_OPTIONS,
    input_rank: None,
    shape: |args, input| {
        if let ShapeInfo::Known(dims) = input {
            if dims.len() == 3 {
                return Err(format!(
                    "`BatchNorm1d` takes a vector `[features]` or a signal `[channels, length]`, but its input is \
                     the image {}; use `BatchNorm2d`",
                    suggest::dims(dims)
                ));
            }
        }
        batch_norm_shape(args, input)
    },
    emit: emit_batch_norm,
};

pub(crate) const BATCH_NORM2D: Kind = Kind {
    name: "BatchNorm2d",
    options: &BATCH_NORM_OPTIONS,
    input_rank: Some(IMAGE),
    shape: batch_norm_shape,
    emit: emit_batch_norm,
};

/// One dimension: a literal the macro knows, or a `const` expression over the input's
/// type.
#[derive(Clone)]
enum Dim {
    Known(usize),
    Expr(TokenStream),
}

impl Dim {
    fn tokens(&self) -> TokenStream {
        match self {
            Dim::Known(n) => {
                let n = Literal::usize_unsuffixed(*n);
                quote!(#n)
            }
            Dim::Expr(e) => quote!({ #e }),
        }
    }

    /// The dimension as an expression (an argument of a `const fn`).
    fn value(&self) -> TokenStream {
        match self {
            Dim::Known(n) => {
                let n = Literal::usize_unsuffixed(*n);
                quote!(#n)
            }
            Dim::Expr(e) => e.clone(),
        }
    }
}

/// A shape type from dimensions that may be expressions.
fn shape_tokens(dims: &[Dim]) -> TokenStream {
    let d: Vec<TokenStream> = dims.iter().map(Dim::tokens).collect();
    match d.as_slice() {
        [a] => quote!(::nn_core::Shape1<#a>),
        [a, b] => quote!(::nn_core::Shape2<#a, #b>),
        [a, b, c] => quote!(::nn_core::Shape3<#a, #b, #c>),
        _ => quote!(::nn_core::Shape1<1>),
    }
}

/// The shape info of output dimensions: literal when all are known.
fn shape_info(dims: &[Dim]) -> ShapeInfo {
    let known: Option<Vec<usize>> = dims.iter().map(|d| if let Dim::Known(n) = d { Some(*n) } else { None }).collect();
    match known {
        Some(dims) => ShapeInfo::Known(dims),
        None => ShapeInfo::Opaque(shape_tokens(dims)),
    }
}

/// `<T as Shape>::LEN` of an opaque input.
fn len_of(input: &ShapeInfo) -> TokenStream {
    let ty = input.ty();
    quote!(<#ty as ::nn_core::Shape>::LEN)
}

/// The input dimensions of a layer of `rank` dimensions: `None` when unknown.
fn input_dims(input: &ShapeInfo, rank: usize) -> Option<Vec<Dim>> {
    match input {
        ShapeInfo::Known(dims) if dims.len() == rank => Some(dims.iter().map(|&d| Dim::Known(d)).collect()),
        ShapeInfo::Known(_) | ShapeInfo::Unknown => None,
        ShapeInfo::Opaque(ty) => Some(
            (0..rank)
                .map(|i| {
                    let i = Literal::usize_unsuffixed(i);
                    Dim::Expr(quote!(<#ty as ::nn_core::Shape>::DIMS[#i]))
                })
                .collect(),
        ),
    }
}

/// `5x3` (2-D) or `5` (1-D).
fn sizes(values: &[usize]) -> String {
    values.iter().map(usize::to_string).collect::<Vec<_>>().join("x")
}

/// A literal list `[a, b]` of the first `axes` values.
fn list(values: [usize; 2], axes: usize) -> TokenStream {
    let v = values[..axes].iter().map(|&n| Literal::usize_unsuffixed(n));
    quote!([#(#v),*])
}

/// The first `axes` values, or the single value of a 1-D layer.
fn arg(values: [usize; 2], axes: usize) -> TokenStream {
    if axes == 1 {
        let n = Literal::usize_unsuffixed(values[0]);
        quote!(#n)
    } else {
        list(values, axes)
    }
}

/// A whole-number option: its literal, or the `const` item written for it.
fn size_dim(args: &Args, name: &str) -> Dim {
    match args.constant_path(name) {
        Some(path) => Dim::Expr(quote!(#path)),
        None => Dim::Known(args.count(name)),
    }
}

/// The kernel along each of `axes` axes: literals, or a `const` item for every axis.
fn kernel_dims(args: &Args, axes: usize) -> Vec<Dim> {
    match args.constant_path("kernel") {
        Some(path) => vec![Dim::Expr(quote!(#path)); axes],
        None => args.axes("kernel")[..axes].iter().map(|&k| Dim::Known(k)).collect(),
    }
}

/// A planned layer: its input and output dimensions.
struct Plan {
    input: Vec<Dim>,
    output: ShapeInfo,
    out_dims: Vec<Dim>,
}

impl Plan {
    fn unknown() -> Plan {
        Plan { input: Vec::new(), output: ShapeInfo::Unknown, out_dims: Vec::new() }
    }

    fn new(input: Vec<Dim>, out_dims: Vec<Dim>) -> Plan {
        Plan { output: shape_info(&out_dims), input, out_dims }
    }

    /// The input and output dimensions as type arguments (ones for an unknown plan).
    fn dims(&self, rank: usize) -> (Vec<TokenStream>, Vec<TokenStream>) {
        let one = |dims: &[Dim]| -> Vec<TokenStream> {
            if dims.is_empty() {
                vec![quote!(1); rank]
            } else {
                dims.iter().map(Dim::tokens).collect()
            }
        };
        (one(&self.input), one(&self.out_dims))
    }
}

/// The zeros `[before, after]` of `padding` along one axis.
pub(crate) fn pad(padding: Padding, axis: usize, kernel: usize, dilation: usize) -> [usize; 2] {
    match padding {
        Padding::Valid => [0, 0],
        Padding::Same => {
            let total = dilation * (kernel - 1);
            [total / 2, total - total / 2]
        }
        Padding::Explicit(p) => [p[axis], p[axis]],
    }
}

/// The shapes of a convolution with `axes` spatial axes (1 or 2).
fn conv(args: &Args, input: &ShapeInfo, axes: usize) -> Result<Plan, String> {
    let (kernel, stride, dilation) = (args.axes("kernel"), args.axes("stride"), args.axes("dilation"));
    let padding = args.padding("padding");
    let kind = if axes == 1 { "Conv1d" } else { "Conv2d" };
    if padding == Padding::Same && stride[..axes].iter().any(|&s| s != 1) {
        let explicit = match args.constant_path("kernel") {
            Some(_) => String::from("half the kernel"),
            None => format!("`padding: {}`", kernel[0] / 2),
        };
        return Err(format!(
            "`{kind}` with `padding: Same` needs stride 1, found stride {}: PyTorch rejects padding='same' for \
             strided convolutions; give the padding explicitly ({explicit})",
            sizes(&stride[..axes]),
        ));
    }
    let (filters, groups) = (args.count("filters"), args.count("groups"));
    // A `const` item's divisibility is checked by the layer's `const fn new`.
    if !args.constant("filters") && !filters.is_multiple_of(groups) {
        return Err(format!(
            "`{kind}` filters {filters} are not divisible by its groups {groups} (PyTorch's `out_channels % groups == 0`)"
        ));
    }
    let Some(dims) = input_dims(input, axes + 1) else { return Ok(Plan::unknown()) };
    if let Dim::Known(channels) = dims[0] {
        if !channels.is_multiple_of(groups) {
            return Err(format!(
                "`{kind}` input channels {channels} are not divisible by its groups {groups} (PyTorch's \
                 `in_channels % groups == 0`; input {})",
                suggest::dims(&known(input)),
            ));
        }
    }
    let mut out = vec![size_dim(args, "filters")];
    let (mut spans, mut padded) = (Vec::new(), Vec::new());
    let kernel_dims = kernel_dims(args, axes);
    for axis in 0..axes {
        // A `const` kernel: the size is a `const` expression, checked by `new`; `Same`
        // keeps it.
        if let Dim::Expr(k) = &kernel_dims[axis] {
            let (s, d) = (stride[axis], dilation[axis]);
            let p = match padding {
                Padding::Explicit(p) => p[axis],
                _ => 0,
            };
            out.push(match &dims[axis + 1] {
                dim if padding == Padding::Same => dim.clone(),
                dim => {
                    let n = dim.value();
                    Dim::Expr(quote!(::nn_core::layers::conv_output_size(#n, #k, #s, #p, #d)))
                }
            });
            continue;
        }
        let [before, after] = pad(padding, axis, kernel[axis], dilation[axis]);
        let span = dilation[axis] * (kernel[axis] - 1) + 1;
        spans.push(span);
        out.push(match &dims[axis + 1] {
            Dim::Known(n) => {
                padded.push(n + before + after);
                if span > n + before + after {
                    Dim::Known(0)
                } else {
                    Dim::Known((n + before + after - span) / stride[axis] + 1)
                }
            }
            // `Same` keeps the size; explicit padding is symmetric.
            Dim::Expr(e) if padding == Padding::Same => Dim::Expr(e.clone()),
            Dim::Expr(e) => {
                let (k, s, p, d) = (kernel[axis], stride[axis], before, dilation[axis]);
                Dim::Expr(quote!(::nn_core::layers::conv_output_size(#e, #k, #s, #p, #d)))
            }
        });
    }
    if out.iter().any(|d| matches!(d, Dim::Known(0))) {
        let dilated = if dilation[..axes].iter().any(|&d| d > 1) {
            format!(" (dilated to {})", sizes(&spans))
        } else {
            String::new()
        };
        return Err(format!(
            "`{kind}` kernel {}{dilated} is larger than its padded input {} (input {}, padding {})",
            sizes(&kernel[..axes]),
            sizes(&padded),
            suggest::dims(&known(input)),
            padding_text(padding, axes),
        ));
    }
    Ok(Plan::new(dims, out))
}

fn known(input: &ShapeInfo) -> Vec<usize> {
    match input {
        ShapeInfo::Known(dims) => dims.clone(),
        _ => Vec::new(),
    }
}

fn padding_text(padding: Padding, axes: usize) -> String {
    match padding {
        Padding::Valid => String::from("Valid"),
        Padding::Same => String::from("Same"),
        Padding::Explicit(p) => format!("{:?}", &p[..axes]),
    }
}

fn emit_conv(args: &Args, input: &ShapeInfo, axes: usize) -> Emitted {
    let plan = conv(args, input, axes).unwrap_or_else(|_| Plan::unknown());
    let (i, o) = plan.dims(axes + 1);
    let filters = size_dim(args, "filters").tokens();
    let k = kernel_dims(args, axes).iter().map(Dim::tokens).collect::<Vec<_>>();
    let o = &o[1..];
    let bias = args.flag("bias");
    // One group keeps the type as it was without the option.
    let groups = match args.count("groups") {
        1 => None,
        g => Some(Literal::usize_unsuffixed(g)),
    };
    let groups = groups.iter();
    let (stride, dilation) = (arg(args.axes("stride"), axes), arg(args.axes("dilation"), axes));
    let padding = match args.padding("padding") {
        Padding::Valid => quote!(::nn_core::layers::Padding::Valid),
        Padding::Same => quote!(::nn_core::layers::Padding::Same),
        Padding::Explicit(p) => {
            let p = list(p, axes);
            quote!(::nn_core::layers::Padding::Explicit(#p))
        }
    };
    let layer = if axes == 1 { quote!(::nn_core::layers::Conv1d) } else { quote!(::nn_core::layers::Conv2d) };
    Emitted {
        ty: quote!(#layer<#(#i,)* #filters, #(#k,)* #(#o,)* #bias #(, #groups)*>),
        value: quote!(#layer::new(#stride, #padding, #dilation)),
    }
}

/// The shapes of a transposed convolution.
fn conv_transpose(args: &Args, input: &ShapeInfo) -> Result<Plan, String> {
    let (kernel, stride, dilation) = (args.axes("kernel"), args.axes("stride"), args.axes("dilation"));
    let (padding, output_padding) = (args.axes("padding"), args.axes("output_padding"));
    for axis in 0..2 {
        if output_padding[axis] >= stride[axis] && output_padding[axis] >= dilation[axis] {
            return Err(format!(
                "`ConvTranspose2d` output_padding {} must be smaller than its stride {} or its dilation {} \
                 (PyTorch's rule)",
                sizes(&output_padding),
                sizes(&stride),
                sizes(&dilation)
            ));
        }
    }
    let Some(dims) = input_dims(input, 3) else { return Ok(Plan::unknown()) };
    let mut out = vec![size_dim(args, "filters")];
    let mut full = Vec::new();
    let kernel_dims = kernel_dims(args, 2);
    for axis in 0..2 {
        let (k, s, p, op, d) = (kernel[axis], stride[axis], padding[axis], output_padding[axis], dilation[axis]);
        // A `const` kernel: the size is a `const` expression, checked by `new`.
        if let Dim::Expr(k) = &kernel_dims[axis] {
            let n = dims[axis + 1].value();
            out.push(Dim::Expr(quote!(::nn_core::layers::conv_transpose_output_size(#n, #k, #s, #p, #op, #d))));
            continue;
        }
        out.push(match &dims[axis + 1] {
            Dim::Known(n) => {
                let size = (n - 1) * s + d * (k - 1) + op + 1;
                full.push(size);
                Dim::Known(size.saturating_sub(2 * p))
            }
            Dim::Expr(e) => Dim::Expr(quote!(::nn_core::layers::conv_transpose_output_size(#e, #k, #s, #p, #op, #d))),
        });
    }
    if out.iter().any(|d| matches!(d, Dim::Known(0))) {
        return Err(format!(
            "`ConvTranspose2d` output would be empty: padding {} removes all of the {} it produces from {}",
            sizes(&padding),
            sizes(&full),
            suggest::dims(&known(input))
        ));
    }
    Ok(Plan::new(dims, out))
}

fn emit_conv_transpose(args: &Args, input: &ShapeInfo) -> Emitted {
    let plan = conv_transpose(args, input).unwrap_or_else(|_| Plan::unknown());
    let (i, o) = plan.dims(3);
    let filters = size_dim(args, "filters").tokens();
    let k = kernel_dims(args, 2).iter().map(Dim::tokens).collect::<Vec<_>>();
    let o = &o[1..];
    let bias = args.flag("bias");
    let [stride, padding, output_padding, dilation] =
        ["stride", "padding", "output_padding", "dilation"].map(|name| list(args.axes(name), 2));
    Emitted {
        ty: quote!(::nn_core::layers::ConvTranspose2d<#(#i,)* #filters, #(#k,)* #(#o,)* #bias>),
        value: quote!(::nn_core::layers::ConvTranspose2d::new(#stride, #padding, #output_padding, #dilation)),
    }
}

/// The stride of a pooling: its `size` unless given.
pub(crate) fn pool_stride(args: &Args) -> [usize; 2] {
    if args.derived("stride") {
        args.axes("size")
    } else {
        args.axes("stride")
    }
}

/// The shapes of a pooling with `axes` spatial axes.
fn pool(args: &Args, input: &ShapeInfo, axes: usize) -> Result<Plan, String> {
    let (size, stride, padding) = (args.axes("size"), pool_stride(args), args.axes("padding"));
    let kind = if axes == 1 { "pooling" } else { "2-D pooling" };
    if (0..axes).any(|a| padding[a] > size[a] / 2) {
        return Err(format!(
            "{kind} padding {} must be at most half the window size {} (PyTorch's rule)",
            sizes(&padding[..axes]),
            sizes(&size[..axes])
        ));
    }
    let Some(dims) = input_dims(input, axes + 1) else { return Ok(Plan::unknown()) };
    let mut out = vec![dims[0].clone()];
    let mut padded = Vec::new();
    for axis in 0..axes {
        let (k, s, p) = (size[axis], stride[axis], padding[axis]);
        out.push(match &dims[axis + 1] {
            Dim::Known(n) => {
                padded.push(n + 2 * p);
                Dim::Known(if k > n + 2 * p { 0 } else { (n + 2 * p - k) / s + 1 })
            }
            Dim::Expr(e) => Dim::Expr(quote!(::nn_core::layers::pool_output_size(#e, #k, #s, #p))),
        });
    }
    if out.iter().any(|d| matches!(d, Dim::Known(0))) {
        return Err(format!(
            "the pooling window {} is larger than its padded input {}: the output would be empty",
            sizes(&size[..axes]),
            sizes(&padded)
        ));
    }
    Ok(Plan::new(dims, out))
}

fn emit_pool(args: &Args, input: &ShapeInfo, name: &str, axes: usize) -> Emitted {
    let plan = pool(args, input, axes).unwrap_or_else(|_| Plan::unknown());
    let (i, o) = plan.dims(axes + 1);
    let o = &o[1..];
    let layer: TokenStream = format!("::nn_core::layers::{name}").parse().unwrap_or_default();
    let [size, stride, padding] = [args.axes("size"), pool_stride(args), args.axes("padding")].map(|v| arg(v, axes));
    Emitted { ty: quote!(#layer<#(#i,)* #(#o),*>), value: quote!(#layer::new(#size, #stride, #padding)) }
}

/// `[C, ...] -> [C]`.
fn global_shape(_: &Args, input: &ShapeInfo) -> Result<ShapeInfo, String> {
    Ok(match input {
        ShapeInfo::Known(dims) => ShapeInfo::Known(vec![dims[0]]),
        ShapeInfo::Opaque(ty) => {
            ShapeInfo::Opaque(shape_tokens(&[Dim::Expr(quote!(<#ty as ::nn_core::Shape>::DIMS[0]))]))
        }
        ShapeInfo::Unknown => ShapeInfo::Unknown,
    })
}

fn emit_global(input: &ShapeInfo, name: &str) -> Emitted {
    let rank = if name.ends_with("1d") { 2 } else { 3 };
    let dims = input_dims(input, rank).unwrap_or_else(|| vec![Dim::Known(1); rank]);
    let i = dims.iter().map(Dim::tokens);
    let layer: TokenStream = format!("::nn_core::layers::{name}").parse().unwrap_or_default();
    Emitted { ty: quote!(#layer<#(#i),*>), value: quote!(#layer::new()) }
}

/// The shapes of a nearest-neighbour upsampling with `axes` spatial axes.
fn upsample(args: &Args, input: &ShapeInfo, axes: usize) -> Plan {
    let scale = args.axes("scale");
    let Some(dims) = input_dims(input, axes + 1) else { return Plan::unknown() };
    let mut out = vec![dims[0].clone()];
    for axis in 0..axes {
        let s = scale[axis];
        out.push(match &dims[axis + 1] {
            Dim::Known(n) => Dim::Known(n * s),
            Dim::Expr(e) => Dim::Expr(quote!(#e * #s)),
        });
    }
    Plan::new(dims, out)
}

fn emit_upsample(args: &Args, input: &ShapeInfo, axes: usize) -> Emitted {
    let (i, o) = upsample(args, input, axes).dims(axes + 1);
    let o = &o[1..];
    let scale = arg(args.axes("scale"), axes);
    let layer = if axes == 1 { quote!(::nn_core::layers::Upsample1d) } else { quote!(::nn_core::layers::Upsample) };
    Emitted { ty: quote!(#layer<#(#i,)* #(#o),*>), value: quote!(#layer::new(#scale)) }
}

/// Batch norm keeps the shape; its momentum is in [0, 1] and its epsilon positive.
fn batch_norm_shape(args: &Args, input: &ShapeInfo) -> Result<ShapeInfo, String> {
    let (momentum, eps) = (args.float("momentum"), args.float("eps"));
    if !(0.0..=1.0).contains(&momentum) {
        return Err(format!("batch norm `momentum` must be in [0, 1], found {momentum}"));
    }
    if eps <= 0.0 {
        return Err(format!("batch norm `eps` must be positive, found {eps}"));
    }
    Ok(input.clone())
}

fn emit_batch_norm(args: &Args, input: &ShapeInfo) -> Emitted {
    let shape = input.ty();
    let (momentum, eps) = (float(args.float("momentum")), float(args.float("eps")));
    let value = if args.flag("inference") {
        quote!(::nn_core::layers::BatchNorm::new(#momentum, #eps).inference())
    } else {
        quote!(::nn_core::layers::BatchNorm::new(#momentum, #eps))
    };
    Emitted { ty: quote!(::nn_core::layers::BatchNorm<#shape>), value }
}
