//! The `network!` macro of `nn-core`.
//!
//! The input goes through four phases, each its own module: [`parse`] reads the syntax
//! (recovering after a bad layer so that every mistake is reported), [`lower`] resolves
//! layer kinds and options against the table in [`kinds`] and infers every shape,
//! [`validate`] checks what spans several layers, and [`expand`] writes the Rust items,
//! or a stub when there were errors, so that one mistake gives one diagnostic.
#![forbid(unsafe_code)]

mod errors;
mod expand;
mod ir;
mod kinds;
mod lower;
mod parse;
mod pipeline;
mod suggest;
mod validate;

#[cfg(test)]
mod tests;

/// Declares one or more networks: see the `nn_core` crate documentation.
#[proc_macro]
pub fn network(input: proc_macro::TokenStream) -> proc_macro::TokenStream {
    pipeline::network(input.into()).into()
}
