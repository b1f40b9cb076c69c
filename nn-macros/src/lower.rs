//! Phase 2: from syntax to the IR. Resolves each layer's kind and options against
//! [`crate::kinds`] and infers every shape, from the declared input through each layer.
//!
//! Shapes the macro sees as literals are checked here, in the user's words. The output
//! of a network used as a layer is only a type to the macro: it stays opaque, and the
//! checks that depend on it are left to the type system (see `expand`). After an error
//! the shape becomes unknown and the checks that depend on it are skipped, so one
//! mistake is reported once.
use quote::quote_spanned;
use syn::spanned::Spanned;
use syn::Ident;

use crate::errors::Errors;
use crate::ir::{
    unraw, DeclaredShape, Graph, GraphLayer, Layer, Network, Node, NodeOp, Op, ShapeInfo, Source, ValueInfo,
};
use crate::kinds::{self, Args, Kind};
use crate::parse::{LayerDef, NetworkDef, OptionsDef, ShapeDef, Value};
use crate::suggest;

/// The most dimensions a shape has (`Shape3`).
const MAX_RANK: usize = 3;

pub(crate) fn lower(def: &NetworkDef, errors: &mut Errors) -> Network {
    let input = def.signature.as_ref().map(|s| declared(&s.input, errors));
    let output = def.signature.as_ref().map(|s| declared(&s.output, errors));
    if let Some(extra) = def.signature.as_ref().and_then(|s| s.more_inputs.first().or(s.more_outputs.first())) {
        errors
            .at(extra.span(), "a network with several inputs or outputs is written in the graph form (`graph { .. }`)");
    }
    let mut shape = match input.as_ref().and_then(|d| d.dims.clone()) {
        Some(dims) => ShapeInfo::Known(dims),
        None => ShapeInfo::Unknown,
    };
    if def.layers.is_empty() {
        errors.at(
            def.body_span,
            format!("`{}` has no layers; add one, as in `fc1: Dense {{ units: 10 }}`", unraw(&def.name)),
        );
    }
    let mut source = Source::Input(def.name.clone());
    let mut layers = Vec::with_capacity(def.layers.len());
    for layer_def in &def.layers {
        let Some(layer_def) = layer_def else {
            // A layer that did not parse: nothing is known after it.
            shape = ShapeInfo::Unknown;
            continue;
        };
        let layer = lower_layer(layer_def, shape, source, layers.last(), errors);
        shape = layer.output.clone();
        source = Source::Layer(layer.name.clone());
        layers.push(layer);
    }
    Network { attrs: def.attrs.clone(), vis: def.vis.clone(), name: def.name.clone(), input, output, layers }
}

/// A sequential network as the statements of a graph: its input, then each layer
/// applied to the value before it, the last one's value the output.
pub(crate) fn into_graph(mut net: Network) -> Graph {
    let layers = std::mem::take(&mut net.layers);
    let dims = |d: &Option<DeclaredShape>| d.as_ref().and_then(|d| d.dims.clone());
    let (input_dims, output_dims) = (dims(&net.input), dims(&net.output));
    let input = ValueInfo {
        name: net.name.clone(),
        shape: input_dims.clone().map_or(ShapeInfo::Unknown, ShapeInfo::Known),
        input: true,
        uses: 1,
    };
    let mut values = vec![input];
    let mut nodes = Vec::with_capacity(layers.len());
    for (k, layer) in layers.iter().enumerate() {
        values.push(ValueInfo { name: layer.name.clone(), shape: layer.output.clone(), input: false, uses: 1 });
        nodes.push(Node { op: NodeOp::Apply(k), args: vec![k], out: k + 1, states: Vec::new() });
    }
    Graph {
        net,
        outputs: vec![layers.len()],
        layers: layers.into_iter().map(GraphLayer::Plain).collect(),
        values,
        nodes,
        inputs: vec![0],
        input_shapes: vec![input_dims],
        output_shapes: vec![output_dims],
        type_checks: Vec::new(),
        state_checks: Vec::new(),
    }
}

/// Checks a written shape: 1 to 3 dimensions, each at least 1.
pub(crate) fn declared(shape: &ShapeDef, errors: &mut Errors) -> DeclaredShape {
    let span = shape.span();
    let mut dims = Vec::with_capacity(shape.dims.len());
    let mut valid = true;
    for lit in &shape.dims {
        match lit.base10_parse::<usize>() {
            Ok(0) => {
                errors.spanned(lit, "a dimension must be at least 1");
                valid = false;
            }
            Ok(d) => dims.push(d),
            Err(e) => {
                errors.push(e);
                valid = false;
            }
        }
    }
    if shape.dims.is_empty() || shape.dims.len() > MAX_RANK {
        errors.at(
            span,
            format!(
                "a shape has 1 to {MAX_RANK} dimensions (`[features]`, `[time, features]` or \
                 `[channels, height, width]`), found {}",
                shape.dims.len()
            ),
        );
        valid = false;
    } else if valid && dims.iter().try_fold(1usize, |n, &d| n.checked_mul(d)).is_none() {
        errors.at(span, "this shape has more elements than fit in `usize`");
        valid = false;
    }
    DeclaredShape { span, dims: valid.then_some(dims) }
}

pub(crate) fn lower_layer(
    def: &LayerDef,
    input: ShapeInfo,
    source: Source,
    previous: Option<&Layer>,
    errors: &mut Errors,
) -> Layer {
    let assertion = def.assertion.as_ref().map(|a| declared(a, errors));
    let (op, output) = match kind_of(def) {
        Resolution::Builtin(kind) => builtin(def, kind, &input, &source, previous, errors),
        Resolution::Network => {
            // Spanned at the path: if it is not a layer (or not found), rustc reports
            // every use at that one place, and identical reports are merged.
            let path = &def.kind;
            let output = quote_spanned!(path.span()=> <#path as ::nn_core::Layer>::Output);
            (Op::Network, ShapeInfo::Opaque(output))
        }
        Resolution::Unknown(message) => {
            errors.spanned(&def.kind, message);
            (Op::Invalid, ShapeInfo::Unknown)
        }
    };
    Layer { name: def.name.clone(), kind: def.kind.clone(), op, source, input, output, assertion }
}

enum Resolution {
    Builtin(&'static Kind),
    Network,
    Unknown(String),
}

/// A single identifier names a built-in kind, or a close misspelling of one; any
/// other path without options is a network used as a layer.
fn kind_of(def: &LayerDef) -> Resolution {
    let ident = def.kind.get_ident();
    if let Some(kind) = ident.and_then(|i| kinds::find(&i.to_string())) {
        return Resolution::Builtin(kind);
    }
    let written = suggest::compact(&def.kind);
    if def.options.is_some() {
        let hint = match ident.and_then(|i| suggest::closest(&i.to_string(), kinds::names())) {
            Some(kind) => format!("; did you mean `{kind}`?"),
            None => format!(
                "; the built-in kinds are {} (a network used as a layer takes no options)",
                suggest::one_of(kinds::names())
            ),
        };
        return Resolution::Unknown(format!("unknown layer kind `{written}`{hint}"));
    }
    if let Some(ident) = ident {
        let word = ident.to_string();
        if let Some(kind) = kinds::names().find(|k| suggest::loose_distance(&word, k) <= 1) {
            return Resolution::Unknown(format!(
                "unknown layer kind `{word}`; did you mean `{kind}`? (to use a network named \
                 `{word}` as a layer, write its path: `self::{word}`)"
            ));
        }
    }
    Resolution::Network
}

/// Resolves the options of a built-in layer and infers its output shape.
fn builtin(
    def: &LayerDef,
    kind: &'static Kind,
    input: &ShapeInfo,
    source: &Source,
    previous: Option<&Layer>,
    errors: &mut Errors,
) -> (Op, ShapeInfo) {
    let entries = def.options.as_ref().map_or(&[][..], |o| &o.entries[..]);
    if let Some(tied) = entries.iter().find(|e| e.key == "tied") {
        let (layer, target) = (unraw(&def.name), crate::suggest::compact(&tied.value));
        errors.spanned(
            &tied.key,
            format!(
                "a layer tied to another (`tied: {target}`) is written in the graph form: `graph {{ .. }}` after \
                 the output shape, with `out = {layer}(h): Dense {{ tied: {target} }};` among its statements"
            ),
        );
        return (Op::Invalid, ShapeInfo::Unknown);
    }
    let (args, mut complete) = options(def, kind, errors);
    complete &= !def.options.as_ref().is_some_and(|o| o.malformed);
    if !complete {
        return (Op::Invalid, ShapeInfo::Unknown);
    }
    let mut input_ok = true;
    if let (Some(rank), ShapeInfo::Known(dims)) = (&kind.input_rank, input) {
        if dims.len() != rank.rank {
            let layer = unraw(&def.name);
            let hint = rank.hint.replace("{layer}", &layer);
            // A recurrent layer before it can change the rank of its own output.
            let hint = match previous.and_then(|p| crate::rnn_kinds::producer_hint(p, rank.rank)) {
                Some(first) => format!("{first}, or {hint}"),
                None => hint,
            };
            errors.spanned(
                &def.kind,
                format!(
                    "`{layer}` (`{}`) takes {}, but {}; {hint}",
                    kind.name,
                    rank.noun,
                    source.produces(&suggest::dims(dims))
                ),
            );
            input_ok = false;
        }
    }
    // Checks of one option against the input, reported at that option.
    if input_ok {
        for check in kinds::option_checks(kind.name) {
            if let Err(message) = (check.check)(&args, input) {
                let entries = def.options.as_ref().map_or(&[][..], |o| &o.entries[..]);
                match entries.iter().find(|e| e.key == check.option) {
                    Some(entry) => {
                        let mut written = quote::ToTokens::to_token_stream(&entry.key);
                        quote::ToTokens::to_tokens(&entry.value, &mut written);
                        errors.spanned(written, message);
                    }
                    None => errors.spanned(&def.kind, message),
                }
            }
        }
    }
    let output = match (kind.shape)(&args, if input_ok { input } else { &ShapeInfo::Unknown }) {
        Ok(output) => output,
        Err(message) => {
            errors.spanned(&def.kind, message);
            ShapeInfo::Unknown
        }
    };
    (Op::Builtin { kind, args }, output)
}

/// The options of a layer with defaults filled in, and whether every required option
/// has a valid value (invalid optional ones fall back to their default so that the
/// shapes after them are still checked).
fn options(def: &LayerDef, kind: &'static Kind, errors: &mut Errors) -> (Args, bool) {
    // After an option that did not parse, a "missing" option may be that one.
    let malformed = def.options.as_ref().is_some_and(|o| o.malformed);
    let mut args = Args::default();
    let mut complete = true;
    let mut seen: Vec<&Ident> = Vec::new();
    // Options named by a "did you mean" are not reported again as missing.
    let mut suggested: Vec<&str> = Vec::new();
    let entries = def.options.as_ref().map_or(&[][..], |o: &OptionsDef| &o.entries[..]);
    for entry in entries {
        let key = entry.key.to_string();
        let Some(spec) = kind.options.iter().find(|o| o.name == key) else {
            let hint = if kind.options.is_empty() {
                String::from(" (it takes no options)")
            } else {
                match suggest::closest(&key, kind.options.iter().map(|o| o.name)) {
                    Some(c) => {
                        suggested.push(c);
                        format!("; did you mean `{c}`?")
                    }
                    None => format!("; its options are {}", suggest::one_of(kind.options.iter().map(|o| o.name))),
                }
            };
            errors.spanned(&entry.key, format!("`{}` has no option `{key}`{hint}", kind.name));
            continue;
        };
        if seen.iter().any(|k| **k == entry.key) {
            errors.spanned(&entry.key, format!("option `{key}` is given twice"));
            continue;
        }
        seen.push(&entry.key);
        match kinds::resolve(spec, &entry.value) {
            Ok(kinds::Resolved::Constant) => match &entry.value {
                Value::Name { path, .. } if kinds::CONST_SIZES.contains(&(kind.name, spec.name)) => {
                    args.set_constant(spec.name, path.clone());
                }
                _ => {
                    // The options of this kind that take a `const` item, if any.
                    let accepted: Vec<String> = kinds::CONST_SIZES
                        .iter()
                        .filter(|(k, _)| *k == kind.name)
                        .map(|(_, o)| format!("`{o}`"))
                        .collect();
                    let hint = match accepted.as_slice() {
                        [] => format!("`{}` takes no `const` item", kind.name),
                        [one] => format!("of its options, {one} accepts a `const` item"),
                        [init @ .., last] => {
                            format!("of its options, {} and {last} accept a `const` item", init.join(", "))
                        }
                    };
                    errors.spanned(
                        &entry.value,
                        format!(
                            "`{key}` of `{}` must be a literal whole number (the macro computes the shapes \
                             from it); {hint}",
                            kind.name,
                        ),
                    );
                    complete = false;
                }
            },
            Ok(value) => args.set(spec.name, value),
            Err(message) => {
                errors.spanned(&entry.value, message);
                match spec.default {
                    Some(default) if !spec.ty.shapes_output() => args.set(spec.name, default),
                    _ => complete = false,
                }
            }
        }
    }
    for spec in kind.options {
        if seen.iter().any(|k| *k == spec.name) {
            continue;
        }
        match spec.default {
            Some(default) => args.set(spec.name, default),
            None if suggested.contains(&spec.name) || malformed => complete = false,
            None => {
                let message = format!("`{}` needs the option `{}`, {}", kind.name, spec.name, spec.ty.describe());
                match &def.options {
                    Some(options) => errors.at(options.brace.span.join(), message),
                    None => errors.spanned(&def.kind, message),
                }
                complete = false;
            }
        }
    }
    (args, complete)
}
