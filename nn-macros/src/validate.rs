//! Phase 3: the checks that span several layers: layer names are unique, `=> [..]`
//! assertions hold and the last layer produces the declared output; and those that
//! span the networks of one invocation (`composition`). Shapes known only as types
//! are checked by the code `expand` writes.
use syn::Ident;

use crate::errors::Errors;
use crate::ir::{unraw, Graph, GraphLayer, Network, Op, ShapeInfo};
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

pub(crate) fn validate(net: &Network, errors: &mut Errors) {
    let name = unraw(&net.name);
    for (i, layer) in net.layers.iter().enumerate() {
        let layer_name = unraw(&layer.name);
        let mut earlier = net.layers[..i].iter().filter(|l| unraw(&l.name) == layer_name);
        if let Some(first) = earlier.next() {
            errors.spanned(&layer.name, format!("layer name `{layer_name}` is used twice"));
            if earlier.next().is_none() {
                errors.spanned(&first.name, format!("`{layer_name}` is first used here"));
            }
        }
    }

    for layer in &net.layers {
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

    if let (Some(output), Some(last)) = (&net.output, net.layers.last()) {
        if let (Some(declared), ShapeInfo::Known(dims)) = (&output.dims, &last.output) {
            if declared != dims {
                errors.at(
                    output.span,
                    format!(
                        "`{name}` declares output {} but its last layer `{}` produces {}",
                        suggest::dims(declared),
                        unraw(&last.name),
                        suggest::dims(dims)
                    ),
                );
            }
        }
    }
}
