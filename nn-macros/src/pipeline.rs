//! The phases wired together: parse -> lower -> validate -> expand.
use proc_macro2::TokenStream;

use crate::errors::Errors;
use crate::{expand, ir, lower, parse, validate};

/// A network after `lower` and `validate`, with whether it had errors.
pub(crate) struct Checked {
    pub network: ir::Network,
    /// The lowered graph, for a network written in the graph form.
    pub graph: Option<crate::graph::Graph>,
    pub valid: bool,
}

/// Parses, lowers and validates every network of an invocation, collecting every
/// error.
pub(crate) fn analyze(tokens: TokenStream) -> (Vec<Checked>, Errors) {
    let mut errors = Errors::default();
    let input = parse::parse(tokens, &mut errors);
    let networks = input
        .networks
        .iter()
        .map(|def| {
            let mut own = Errors::default();
            if let Some(body) = &def.graph {
                let graph = crate::graph::lower(def, body, &mut own);
                let valid = own.is_empty() && !def.malformed;
                errors.append(own);
                let network = placeholder(&graph.net);
                return Checked { network, graph: Some(graph), valid };
            }
            let network = lower::lower(def, &mut own);
            validate::validate(&network, &mut own);
            let valid = own.is_empty() && !def.malformed;
            errors.append(own);
            Checked { network, graph: None, valid }
        })
        .collect();
    (networks, errors)
}

/// The networks of an invocation, or all its errors.
#[cfg(test)]
pub(crate) fn check(tokens: TokenStream) -> syn::Result<Vec<ir::Network>> {
    let (networks, errors) = analyze(tokens);
    errors.into_result()?;
    Ok(networks.into_iter().map(|c| c.network).collect())
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
        out.extend(match (&checked.graph, checked.valid) {
            (Some(graph), true) => crate::graph::expand(graph),
            (None, true) => expand::network(&checked.network),
            (_, false) => expand::stub(&checked.network),
        });
    }
    let ok = errors.is_empty();
    if let Err(e) = errors.into_result() {
        out.extend(e.to_compile_error());
    }
    (out, ok)
}

/// A copy of a network's name, attributes and declared shapes, without layers.
fn placeholder(net: &ir::Network) -> ir::Network {
    let copy =
        |d: &Option<ir::DeclaredShape>| d.as_ref().map(|d| ir::DeclaredShape { span: d.span, dims: d.dims.clone() });
    ir::Network {
        attrs: net.attrs.clone(),
        vis: net.vis.clone(),
        name: net.name.clone(),
        input: copy(&net.input),
        output: copy(&net.output),
        layers: Vec::new(),
    }
}
