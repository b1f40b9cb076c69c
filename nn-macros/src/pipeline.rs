//! The phases wired together: parse -> lower -> validate -> expand. Both forms lower to
//! one `ir::Graph`, which one validation checks and one emitter writes.
use proc_macro2::TokenStream;

use crate::errors::Errors;
use crate::{expand, ir, lower, parse, validate};

/// A network after `lower` and `validate`, with whether it had errors.
pub(crate) struct Checked {
    pub graph: ir::Graph,
    pub valid: bool,
}

/// Parses, lowers and validates every network of an invocation, collecting every
/// error.
pub(crate) fn analyze(tokens: TokenStream) -> (Vec<Checked>, Errors) {
    let mut errors = Errors::default();
    let input = parse::parse(tokens, &mut errors);
    let mut networks = input
        .networks
        .iter()
        .map(|def| {
            let mut own = Errors::default();
            let (mut graph, statements) = match &def.graph {
                Some(body) => {
                    let (graph, statements) = crate::lower_graph::lower(def, body, &mut own);
                    (graph, Some(statements))
                }
                None => (lower::into_graph(lower::lower(def, &mut own)), None),
            };
            validate::validate(&mut graph, statements.as_ref(), &mut own);
            let valid = own.is_empty() && !def.malformed;
            errors.append(own);
            Checked { graph, valid }
        })
        .collect::<Vec<_>>();
    let graphs: Vec<&ir::Graph> = networks.iter().map(|c| &c.graph).collect();
    let wrong = validate::composition(&graphs, &mut errors);
    for (checked, wrong) in networks.iter_mut().zip(wrong) {
        checked.valid &= !wrong;
    }
    (networks, errors)
}

/// The networks of an invocation, or all its errors.
#[cfg(test)]
pub(crate) fn check(tokens: TokenStream) -> syn::Result<Vec<ir::Graph>> {
    let (networks, errors) = analyze(tokens);
    errors.into_result()?;
    Ok(networks.into_iter().map(|c| c.graph).collect())
}

/// The expansion of `network! { tokens }`: every network (a stub for those with
/// errors) followed by a `compile_error!` per error.
pub(crate) fn network(tokens: TokenStream) -> TokenStream {
    expand_all(tokens).0
}

/// The expansion and whether the input had no errors.
pub(crate) fn expand_all(tokens: TokenStream) -> (TokenStream, bool) {
    let (networks, errors) = analyze(tokens);
    let mut out = TokenStream::new();
    for checked in &networks {
        out.extend(if checked.valid { expand::network(&checked.graph) } else { expand::stub(&checked.graph.net) });
    }
    let ok = errors.is_empty();
    if let Err(e) = errors.into_result() {
        out.extend(e.to_compile_error());
    }
    (out, ok)
}
