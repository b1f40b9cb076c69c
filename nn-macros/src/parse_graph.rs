//! Phase 1 of the graph form of `network!`: its statements, named values computed
//! by layers and merges.
//!
//! ```text
//! graph     := `graph` `{` statement* `}`
//! statement := `input` value `;`
//!            | `output` value `;`
//!            | value `=` call (`=>` shape)? `;`
//!            | `(` value `,` value (`,` value)? `)` `=` call `;`
//! call      := merge `(` value,+ (`,` `axis` `:` integer)? `)`
//!            | layer `(` value (`,` value)* `)` (`:` path (options | `(` value `)`)?)?
//! merge     := `add` | `subtract` | `multiply` | `concat`
//! ```
//!//!
//! A layer is declared, with its kind, where it is first applied; applying it again by
//! name alone shares its parameters. A layer takes one value, a recurrent layer also
//! its initial state (`gru(x, h0)`, `lstm(x, h0, c0)`; checked by `lower_graph`). `tied: enc` in the options of a `Dense` layer
//! makes its weight the transpose of the `Dense` layer `enc`'s, with a bias of its own.
//! `(y, h) = gru(x)`, `(y, h, c) = lstm(x)` also name a recurrent layer's final state
//! (Keras's `return_state=True`; checked by `lower_graph`); `_` discards a value.
use proc_macro2::Span;
use syn::parse::ParseStream;
use syn::{parenthesized, token, Ident, LitInt, Path, Token};

use crate::errors::Errors;
use crate::parse::{self, LayerDef, OptionDef, OptionsDef, ShapeDef, Value};

/// The merges, by name.
const MERGES: &[&str] = &["add", "subtract", "multiply", "concat"];

/// The body of a network in the graph form.
pub(crate) struct GraphDef {
    pub keyword: Span,
    pub body: Span,
    /// The statements in order; `None` for one that did not parse.
    pub statements: Vec<Option<Stmt>>,
}

pub(crate) enum Stmt {
    /// `input x;`
    Input { keyword: Ident, names: Vec<Ident> },
    /// `output y;`
    Output { keyword: Ident, names: Vec<Ident> },
    /// `h = fc1(x): Dense { units: 8 } => [8];`; `(y, h, c) = lstm(x): Lstm { .. };`
    /// names in `states` the final state (`h`, then `c`), `tuple` spanning the names.
    Assign { value: Ident, call: Box<Call>, assertion: Option<ShapeDef>, states: Vec<Ident>, tuple: Option<Span> },
}

pub(crate) enum Call {
    /// `fc1(x)`, with the layer's declaration at its first use.
    Layer { layer: Ident, paren: token::Paren, args: Vec<Ident>, decl: Option<LayerDef>, tied: Option<(Ident, Ident)> },
    /// `add(x, y)`, `concat(a, b, axis: 1)`.
    Merge { op: Ident, paren: token::Paren, args: Vec<Ident>, axis: Option<LitInt> },
}

impl Call {
    /// The values the call is applied to.
    pub(crate) fn args(&self) -> &[Ident] {
        match self {
            Call::Layer { args, .. } | Call::Merge { args, .. } => args,
        }
    }

    /// The span of the call from its name to its closing parenthesis.
    pub(crate) fn span(&self) -> Span {
        let (name, paren) = match self {
            Call::Layer { layer, paren, .. } => (layer, paren),
            Call::Merge { op, paren, .. } => (op, paren),
        };
        name.span().join(paren.span.close()).unwrap_or_else(|| name.span())
    }
}

/// Parses the statements inside `graph { ... }`, recovering after a bad one.
pub(crate) fn parse_body(input: ParseStream, keyword: Span, body: Span, errors: &mut Errors) -> GraphDef {
    let mut statements = Vec::new();
    let mut discards = 0;
    while !input.is_empty() {
        match statement(input, &mut discards) {
            Ok(stmt) => statements.push(Some(stmt)),
            Err(e) => {
                errors.push(e);
                statements.push(None);
                skip_past_semicolon(input);
            }
        }
    }
    GraphDef { keyword, body, statements }
}

/// The name given to the `n`-th `_` of a graph: a value that is computed and unused.
fn discard(n: usize, span: Span) -> Ident {
    Ident::new(&format!("__discard{n}"), span)
}

/// Whether `name` stands for a `_` (a value nothing needs to use).
pub(crate) fn is_discard(name: &Ident) -> bool {
    name.to_string().starts_with("__discard")
}

/// `(y, h)` or `(y, h, c)` before `=`: the names and their span; `_` discards one.
fn tuple(input: ParseStream, discards: &mut usize) -> syn::Result<(Vec<Ident>, Span)> {
    let content;
    let paren = parenthesized!(content in input);
    let mut names = Vec::new();
    parse::drained(&content, |content| {
        while !content.is_empty() {
            if content.peek(Token![_]) {
                let underscore: Token![_] = content.parse()?;
                names.push(discard(*discards, underscore.span));
                *discards += 1;
            } else {
                names.push(content.parse::<Ident>().map_err(|_| {
                    content.error("expected value names, as in `(y, h, c) = lstm(x)`; `_` discards one")
                })?);
            }
            if content.is_empty() {
                break;
            }
            content.parse::<Token![,]>()?;
        }
        Ok(())
    })?;
    if names.is_empty() {
        return Err(syn::Error::new(paren.span.join(), "expected value names, as in `(y, h, c) = lstm(x)`"));
    }
    Ok((names, paren.span.join()))
}

fn statement(input: ParseStream, discards: &mut usize) -> syn::Result<Stmt> {
    let (first, states, tuple) = if input.peek(token::Paren) {
        let (mut names, span) = tuple(input, discards)?;
        let first = names.remove(0);
        if !input.peek(Token![=]) {
            return Err(input.error("expected `=` after the value names, as in `(y, h, c) = lstm(x): Lstm { .. };`"));
        }
        (first, names, Some(span))
    } else {
        let first: Ident = parse_first(input)?;
        (first, Vec::new(), None)
    };
    statement_from(input, first, states, tuple)
}

fn parse_first(input: ParseStream) -> syn::Result<Ident> {
    input
        .parse()
        .map_err(|_| input.error("expected a statement: `input x;`, `h = fc1(x): Dense { units: 8 };` or `output h;`"))
}

fn statement_from(input: ParseStream, first: Ident, states: Vec<Ident>, tuple: Option<Span>) -> syn::Result<Stmt> {
    let stmt = if tuple.is_none() && (first == "input" || first == "output") && !input.peek(Token![=]) {
        let mut names = Vec::new();
        loop {
            names.push(
                input.parse::<Ident>().map_err(|_| input.error(format!("expected a value name after `{first}`")))?,
            );
            if !input.peek(Token![,]) {
                break;
            }
            input.parse::<Token![,]>()?;
        }
        if first == "input" {
            Stmt::Input { keyword: first, names }
        } else {
            Stmt::Output { keyword: first, names }
        }
    } else {
        if !input.peek(Token![=]) {
            return Err(
                input.error(format!("expected `=` after `{first}`, as in `{first} = fc1(x): Dense {{ units: 8 }};`"))
            );
        }
        input.parse::<Token![=]>()?;
        let name: Ident = input
            .parse()
            .map_err(|_| input.error("expected a layer or a merge (`add`, `subtract`, `multiply`, `concat`)"))?;
        if !input.peek(token::Paren) {
            return Err(input.error(format!("expected `(` and the values `{name}` is applied to")));
        }
        let content;
        let paren = parenthesized!(content in input);
        let mut args = Vec::new();
        let mut axis = None;
        parse::drained(&content, |content| {
            while !content.is_empty() {
                let arg: Ident = content.parse()?;
                if arg == "axis" && content.peek(Token![:]) {
                    content.parse::<Token![:]>()?;
                    axis = Some(content.parse::<LitInt>()?);
                } else {
                    args.push(arg);
                }
                if content.is_empty() {
                    break;
                }
                content.parse::<Token![,]>()?;
            }
            Ok(())
        })?;
        let is_merge = MERGES.contains(&name.to_string().as_str());
        let call = if is_merge {
            if input.peek(Token![:]) {
                return Err(syn::Error::new(name.span(), format!("`{name}` is a merge; give the layer another name")));
            }
            Call::Merge { op: name, paren, args, axis }
        } else {
            if let Some(axis) = &axis {
                return Err(syn::Error::new(axis.span(), "only `concat` takes an `axis`"));
            }
            let mut decl = None;
            let mut tied = None;
            if input.peek(Token![:]) {
                input.parse::<Token![:]>()?;
                let kind: Path = input.parse()?;
                let mut options = None;
                if input.peek(token::Paren) {
                    options = Some(parse::positional(input, &kind)?);
                } else if input.peek(token::Brace) {
                    let content;
                    let brace = syn::braced!(content in input);
                    let mut inner = Errors::default();
                    let entries = parse::list(&content, &mut inner, "options", parse::option);
                    inner.into_result()?;
                    let mut entries: Vec<OptionDef> = entries.into_iter().flatten().collect();
                    if let Some(at) = entries.iter().position(|e| e.key == "tied") {
                        let entry = entries.remove(at);
                        match (&entry.value, entry.value_ident()) {
                            (_, Some(target)) => tied = Some((entry.key.clone(), target.clone())),
                            (other, None) => {
                                return Err(syn::Error::new_spanned(
                                    other,
                                    "expected the name of a `Dense` layer of this graph, as in `tied: enc`",
                                ))
                            }
                        }
                    }
                    options = Some(OptionsDef { brace, entries, malformed: false });
                }
                decl = Some(LayerDef { name: name.clone(), kind, options, assertion: None });
            }
            Call::Layer { layer: name, paren, args, decl, tied }
        };
        let assertion = if input.peek(Token![=>]) {
            input.parse::<Token![=>]>()?;
            Some(parse::shape(input)?)
        } else {
            None
        };
        Stmt::Assign { value: first, call: Box::new(call), assertion, states, tuple }
    };
    if input.is_empty() {
        return Ok(stmt);
    }
    if !input.peek(Token![;]) {
        return Err(input.error("expected `;` after the statement"));
    }
    input.parse::<Token![;]>()?;
    Ok(stmt)
}

impl OptionDef {
    /// The value if it is a single name without arguments (`tied: enc`).
    fn value_ident(&self) -> Option<&Ident> {
        match &self.value {
            Value::Name { path, args: None } => path.get_ident(),
            _ => None,
        }
    }
}

fn skip_past_semicolon(input: ParseStream) {
    let _ = input.step(|cursor| {
        let mut rest = *cursor;
        while let Some((tt, next)) = rest.token_tree() {
            rest = next;
            if matches!(&tt, proc_macro2::TokenTree::Punct(p) if p.as_char() == ';') {
                break;
            }
        }
        Ok(((), rest))
    });
}
