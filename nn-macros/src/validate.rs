//! Phase 3: the checks of a lowered network of either form that span several layers
//! or statements: declared outputs and `=> [..]` assertions hold, names are unique
//! and (graph form) every value is used, the body has its `input` and `output`
//! statements; and those that span the networks of one invocation (`composition`).
//! Shapes known only as types are checked by the code `expand` writes. What `lower`
//! must check to build the IR at all (kinds, options, the shapes each layer accepts,
//! and in the graph form the names each statement uses) it reports as it builds.
use syn::Ident;

use crate::errors::Errors;
use crate::expand;
use crate::ir::{shape_type, unraw, DeclaredShape, Graph, GraphLayer, Layer, Op, ShapeInfo, Statements};
use crate::suggest;

/// The networks of one invocation used as layers of each other: a network that
/// contains itself, directly or through others, is reported at the layer that closes
/// the cycle, in one line where the compiler would write a page of E0391. Returns, per
/// network, whether it has such an error (it is then expanded as a stub, which breaks
/// the cycle).
pub(crate) fn composition(networks: &[&Graph], errors: &mut Errors) -> Vec<bool> {
    // The networks of this invocation each network uses as layers, by index, with
    // the path written.
    let uses: Vec<Vec<(usize, &Ident)>> = networks
        .iter()
        .map(|g| {
            g.layers
                .iter()
                .filter_map(|l| match l {
                    GraphLayer::Plain(layer) if matches!(layer.op, Op::Network) => layer.kind.get_ident(),
                    _ => None,
                })
                .filter_map(|ident| networks.iter().position(|n| n.net.name == *ident).map(|k| (k, ident)))
                .collect()
        })
        .collect();
    let mut wrong = vec![false; networks.len()];
    for (i, used) in uses.iter().enumerate() {
        for &(k, ident) in used {
            if let Some(path) = cycle(&uses, k, i) {
                // A cycle through several networks is reported once, at the first of
                // them; its stub breaks the cycle for the others.
                if path.iter().any(|&n| n < i) {
                    continue;
                }
                let name = |n: usize| format!("`{}`", unraw(&networks[n].net.name));
                let message = if k == i {
                    format!("{} contains itself; a network cannot be one of its own layers", name(i))
                } else {
                    let chain: Vec<String> = path.iter().map(|&n| name(n)).collect();
                    format!("{} contains itself: it contains {}", name(i), chain.join(", which contains "))
                };
                errors.spanned(ident, message);
                wrong[i] = true;
            }
        }
    }
    wrong
}

/// The networks from `from` to `to` through the layers of `uses` (`from` included),
/// if `to` can be reached.
fn cycle(uses: &[Vec<(usize, &Ident)>], from: usize, to: usize) -> Option<Vec<usize>> {
    let mut stack = vec![vec![from]];
    let mut seen = vec![false; uses.len()];
    while let Some(path) = stack.pop() {
        let at = *path.last()?;
        if at == to {
            return Some(path);
        }
        if std::mem::replace(&mut seen[at], true) {
            continue;
        }
        for &(next, _) in &uses[at] {
            let mut longer = path.clone();
            longer.push(next);
            stack.push(longer);
        }
    }
    None
}

/// Validates one lowered network of either form: its declared output against what
/// computes it, its `=> [..]` assertions (the graph form applies those as it reads
/// its statements, since later shapes follow them) and its names; the graph form's
/// `statements` add its statement checks. Shapes known only as types become checks
/// of the type system, which `expand` writes.
pub(crate) fn validate(g: &mut Graph, statements: Option<&Statements>, errors: &mut Errors) {
    match statements {
        None => sequence(g, errors),
        Some(statements) => graph(g, statements, errors),
    }
}

/// A sequential network: layer names are unique, assertions hold and the last layer
/// produces the declared output.
fn sequence(g: &mut Graph, errors: &mut Errors) {
    let layers: Vec<&Layer> = g
        .layers
        .iter()
        .filter_map(|l| match l {
            GraphLayer::Plain(layer) => Some(layer),
            GraphLayer::Tied { .. } => None,
        })
        .collect();
    let name = unraw(&g.net.name);
    for (i, layer) in layers.iter().enumerate() {
        let layer_name = unraw(&layer.name);
        let mut earlier = layers[..i].iter().filter(|l| unraw(&l.name) == layer_name);
        if let Some(first) = earlier.next() {
            errors.spanned(&layer.name, format!("layer name `{layer_name}` is used twice"));
            if earlier.next().is_none() {
                errors.spanned(&first.name, format!("`{layer_name}` is first used here"));
            }
        }
    }

    for layer in &layers {
        let (Some(assertion), ShapeInfo::Known(dims)) = (&layer.assertion, &layer.output) else {
            continue;
        };
        if let Some(asserted) = &assertion.dims {
            if asserted != dims {
                errors.at(
                    assertion.span,
                    format!(
                        "`{}` produces {}, not {}",
                        unraw(&layer.name),
                        suggest::dims(dims),
                        suggest::dims(asserted)
                    ),
                );
            }
        }
    }

    let mut type_checks = Vec::new();
    if let (Some(output), Some(last)) = (&g.net.output, layers.last()) {
        match (&output.dims, &last.output) {
            (Some(declared), ShapeInfo::Known(dims)) if declared != dims => errors.at(
                output.span,
                format!(
                    "`{name}` declares output {} but its last layer `{}` produces {}",
                    suggest::dims(declared),
                    unraw(&last.name),
                    suggest::dims(dims)
                ),
            ),
            (Some(declared), ShapeInfo::Opaque(ty)) => type_checks.push((
                output.span,
                ty.clone(),
                shape_type(declared),
                format!(
                    "`{}` declares output {} but its last layer `{}` produces `{{Self}}`",
                    expand::escape(&name),
                    suggest::dims(declared),
                    expand::escape(&unraw(&last.name))
                ),
                String::from("declared here"),
            )),
            _ => {}
        }
    }
    // `=> [..]` after a layer whose shape is only a type (a `const` size, a network).
    for layer in &layers {
        if let (Some(DeclaredShape { span, dims: Some(dims) }), ShapeInfo::Opaque(ty)) =
            (&layer.assertion, &layer.output)
        {
            type_checks.push((
                *span,
                ty.clone(),
                shape_type(dims),
                format!("`{}` produces `{{Self}}`, not {}", expand::escape(&unraw(&layer.name)), suggest::dims(dims)),
                String::from("asserted here"),
            ));
        }
    }
    g.type_checks.extend(type_checks);
}

/// A graph network: each output has its declared shape, the body has an `input`
/// and an `output` statement, and every value is used.
fn graph(g: &mut Graph, statements: &Statements, errors: &mut Errors) {
    let net_name = unraw(&g.net.name);
    for ((&v, name), &k) in g.outputs.iter().zip(&statements.output_names).zip(&statements.output_slots) {
        let declared = g.output_shapes.get(k).cloned().flatten();
        let output_span = statements.output_spans.get(k).copied();
        match (&g.values[v].shape, declared) {
            (ShapeInfo::Known(dims), Some(declared)) if *dims != declared => errors.spanned(
                name,
                format!(
                    "`{net_name}` declares output {} but `{}` is {}",
                    suggest::dims(&declared),
                    unraw(name),
                    suggest::dims(dims)
                ),
            ),
            (ShapeInfo::Opaque(ty), Some(declared)) => g.type_checks.push((
                output_span.unwrap_or_else(|| name.span()),
                ty.clone(),
                shape_type(&declared),
                format!(
                    "`{}` declares output {} but `{}` is `{{Self}}`",
                    expand::escape(&net_name),
                    suggest::dims(&declared),
                    expand::escape(&unraw(name))
                ),
                String::from("declared here"),
            )),
            _ => {}
        }
    }
    if !statements.saw_input && !statements.recovering {
        errors.at(statements.body, format!("`{net_name}` has no `input` statement; name its input, as in `input x;`"));
    }
    if !statements.saw_output && !statements.recovering {
        errors
            .at(statements.body, format!("`{net_name}` has no `output` statement; name its output, as in `output y;`"));
    }
    for value in g.values.iter().filter(|_| !statements.quiet) {
        if value.uses == 0 && !statements.output_names.contains(&value.name) {
            let name = unraw(&value.name);
            if value.input {
                errors.spanned(&value.name, format!("input `{name}` is never used"));
            } else {
                errors.spanned(&value.name, format!("`{name}` is never used; use it or remove its statement"));
            }
        }
    }
}
