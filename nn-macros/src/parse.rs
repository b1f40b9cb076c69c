//! Phase 1: the syntax of `network!`.
//!
//! ```text
//! input   := network*
//! network := attribute* visibility `struct` Name `:` shape `->` shape `{` layer,* `}`
//! layer   := name `:` path (options | `(` value `)`)? (`=>` shape)?
//! options := `{` (name `:` value),* `}`   (`Kind(v)`: the one option of a one-option kind)
//! shape   := `[` integer,+ `]`
//! value   := `-`? number | `true` | `false` | path (`(` value,* `)`)? | `[` value,* `]`
//! ```
//!
//! Parsing recovers: a malformed layer or option is reported and skipped up to the next
//! comma, a malformed network header up to its body, so every syntax error of an
//! invocation is reported at once and the rest is still checked.
use proc_macro2::{Span, TokenStream, TokenTree};
use quote::{ToTokens, TokenStreamExt};
use syn::ext::IdentExt;
use syn::parse::{ParseStream, Parser};
use syn::{
    braced, bracketed, parenthesized, token, Attribute, Ident, Lit, LitBool, LitFloat, LitInt, Path, Token, Visibility,
};

use crate::errors::Errors;

/// Everything inside `network! { ... }`.
pub(crate) struct Input {
    pub networks: Vec<NetworkDef>,
}

/// `pub struct Name: [in] -> [out] { layers }`.
pub(crate) struct NetworkDef {
    pub attrs: Vec<Attribute>,
    pub vis: Visibility,
    pub name: Ident,
    /// `None` when the part between the name and the body did not parse.
    pub signature: Option<Signature>,
    /// The layers in order; `None` for one that did not parse.
    pub layers: Vec<Option<LayerDef>>,
    /// Whether any part of the network did not parse (already reported).
    pub malformed: bool,
    /// The span of the `{ ... }` body (the name's span if there is none).
    pub body_span: Span,
    /// The statements of a network written in the graph form (`graph { ... }`).
    pub graph: Option<crate::parse_graph::GraphDef>,
}

/// `: [in] -> [out]`.
pub(crate) struct Signature {
    pub input: ShapeDef,
    pub output: ShapeDef,
    /// The shapes after the first of `([a], [b]) -> ([c], [d])` (graph form only).
    pub more_inputs: Vec<ShapeDef>,
    pub more_outputs: Vec<ShapeDef>,
}

/// `[16, 8, 8]`, dimensions not yet checked.
#[derive(Clone)]
pub(crate) struct ShapeDef {
    pub bracket: token::Bracket,
    pub dims: Vec<LitInt>,
}

/// `fc1: Dense { units: 64 } => [64]`.
#[derive(Clone)]
pub(crate) struct LayerDef {
    pub name: Ident,
    pub kind: Path,
    pub options: Option<OptionsDef>,
    pub assertion: Option<ShapeDef>,
}

/// `{ units: 64, activation: Relu }`.
#[derive(Clone)]
pub(crate) struct OptionsDef {
    pub brace: token::Brace,
    pub entries: Vec<OptionDef>,
    /// Whether an entry did not parse (already reported).
    pub malformed: bool,
}

/// `units: 64`.
#[derive(Clone)]
pub(crate) struct OptionDef {
    pub key: Ident,
    pub value: Value,
}

/// An option value.
#[derive(Clone)]
pub(crate) enum Value {
    /// `64`, `-3`.
    Int { minus: Option<Token![-]>, lit: LitInt },
    /// `0.2`, `-1.5e-3`.
    Float { minus: Option<Token![-]>, lit: LitFloat },
    /// `true`, `false`.
    Bool(LitBool),
    /// `Relu`, `LeakyRelu(0.2)`, `Activation::Relu`.
    Name { path: Path, args: Option<(token::Paren, Vec<Value>)> },
    /// Any other literal (a string, a character): parsed so it can be reported as
    /// the wrong type.
    OtherLit(Lit),
    /// `[3, 2]`: per-axis sizes, a shape.
    List { bracket: token::Bracket, items: Vec<Value> },
}

impl ShapeDef {
    pub(crate) fn span(&self) -> Span {
        self.bracket.span.join()
    }
}

impl Value {
    /// How the value reads in a message.
    pub(crate) fn text(&self) -> String {
        crate::suggest::compact(self)
    }
}

impl ToTokens for Value {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        match self {
            Value::Int { minus, lit } => {
                minus.to_tokens(tokens);
                lit.to_tokens(tokens);
            }
            Value::Float { minus, lit } => {
                minus.to_tokens(tokens);
                lit.to_tokens(tokens);
            }
            Value::Bool(b) => b.to_tokens(tokens),
            Value::Name { path, args } => {
                path.to_tokens(tokens);
                if let Some((paren, args)) = args {
                    paren.surround(tokens, |inner| {
                        for (i, a) in args.iter().enumerate() {
                            if i > 0 {
                                inner.append(proc_macro2::Punct::new(',', proc_macro2::Spacing::Alone));
                            }
                            a.to_tokens(inner);
                        }
                    });
                }
            }
            Value::OtherLit(lit) => lit.to_tokens(tokens),
            Value::List { bracket, items } => bracket.surround(tokens, |inner| {
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        inner.append(proc_macro2::Punct::new(',', proc_macro2::Spacing::Alone));
                    }
                    item.to_tokens(inner);
                }
            }),
        }
    }
}

impl ToTokens for ShapeDef {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        self.bracket.surround(tokens, |inner| {
            for (i, d) in self.dims.iter().enumerate() {
                if i > 0 {
                    inner.append(proc_macro2::Punct::new(',', proc_macro2::Spacing::Alone));
                }
                d.to_tokens(inner);
            }
        });
    }
}

/// Parses the whole invocation, reporting syntax errors into `errors`.
pub(crate) fn parse(tokens: TokenStream, errors: &mut Errors) -> Input {
    let parser = |input: ParseStream| -> syn::Result<Input> {
        let mut networks = Vec::new();
        while !input.is_empty() {
            if let Some(net) = network(input, errors) {
                networks.push(net);
            }
        }
        Ok(Input { networks })
    };
    match parser.parse2(tokens) {
        Ok(input) => input,
        Err(e) => {
            // Only reachable if a recovery left tokens unconsumed.
            errors.push(e);
            Input { networks: Vec::new() }
        }
    }
}

/// One network; `None` (after reporting and skipping past its body) when not even
/// its name parsed.
fn network(input: ParseStream, errors: &mut Errors) -> Option<NetworkDef> {
    let errors_before = errors.count();
    let head = (|| -> syn::Result<(Vec<Attribute>, Visibility, Ident)> {
        let attrs = input.call(Attribute::parse_outer)?;
        let vis: Visibility = input.parse()?;
        if !input.peek(Token![struct]) {
            return Err(input.error("expected `struct Name: [input] -> [output] { layers }`"));
        }
        input.parse::<Token![struct]>()?;
        let name: Ident = input.parse()?;
        Ok((attrs, vis, name))
    })();
    let (attrs, vis, name) = match head {
        Ok(head) => head,
        Err(e) => {
            errors.push(e);
            skip_past_body(input);
            return None;
        }
    };
    let signature = match signature(input) {
        Ok(sig) => Some(sig),
        Err(e) => {
            errors.push(e);
            skip_to_body(input);
            None
        }
    };
    let mut layers = Vec::new();
    let mut body_span = name.span();
    let mut graph = None;
    if signature.is_some() && input.peek(Ident) && input.fork().parse::<Ident>().is_ok_and(|i| i == "graph") {
        let keyword: Ident = input.parse().ok()?;
        if input.peek(token::Brace) {
            let parsed = (|| -> syn::Result<crate::parse_graph::GraphDef> {
                let content;
                let brace = braced!(content in input);
                body_span = brace.span.join();
                Ok(crate::parse_graph::parse_body(&content, keyword.span(), body_span, errors))
            })();
            match parsed {
                Ok(g) => graph = Some(g),
                Err(e) => errors.push(e),
            }
        } else {
            errors.push(input.error("expected `{` followed by the statements of the graph"));
            skip_past_body(input);
        }
    } else if input.peek(token::Brace) {
        let body = (|| -> syn::Result<()> {
            let content;
            let brace = braced!(content in input);
            body_span = brace.span.join();
            layers = list(&content, errors, "layers", layer);
            Ok(())
        })();
        if let Err(e) = body {
            errors.push(e);
        }
    } else if signature.is_some() {
        errors.push(input.error("expected `{` followed by the layers of the network"));
        skip_past_body(input);
    }
    let malformed = errors.count() != errors_before;
    Some(NetworkDef { attrs, vis, name, signature, layers, malformed, body_span, graph })
}

/// `: [in] -> [out]`.
fn signature(input: ParseStream) -> syn::Result<Signature> {
    if input.peek(Token![<]) {
        return Err(input.error("a network cannot have generic parameters"));
    }
    if !input.peek(Token![:]) {
        return Err(input.error("expected `:` followed by the input and output shapes, as in `Name: [64] -> [10]`"));
    }
    input.parse::<Token![:]>()?;
    let mut inputs = shapes(input)?;
    if !input.peek(Token![->]) {
        return Err(input.error("expected `->` followed by the output shape, as in `[64] -> [10]`"));
    }
    input.parse::<Token![->]>()?;
    let mut outputs = shapes(input)?;
    let (input_shape, output_shape) = (inputs.remove(0), outputs.remove(0));
    Ok(Signature { input: input_shape, output: output_shape, more_inputs: inputs, more_outputs: outputs })
}

/// `[16]`, or several shapes in parentheses: `([16], [4, 4])`.
fn shapes(input: ParseStream) -> syn::Result<Vec<ShapeDef>> {
    if !input.peek(token::Paren) {
        return Ok(vec![shape(input)?]);
    }
    let content;
    parenthesized!(content in input);
    drained(&content, |content| {
        let mut shapes = Vec::new();
        while !content.is_empty() {
            shapes.push(shape(content)?);
            if content.is_empty() {
                break;
            }
            content.parse::<Token![,]>()?;
        }
        if shapes.is_empty() {
            return Err(content.error("expected shapes such as `([64], [64])`"));
        }
        Ok(shapes)
    })
}

/// `[16, 8, 8]`.
pub(crate) fn shape(input: ParseStream) -> syn::Result<ShapeDef> {
    if !input.peek(token::Bracket) {
        return Err(input.error("expected a shape such as `[64]` or `[1, 28, 28]`"));
    }
    let content;
    let bracket = bracketed!(content in input);
    let dims = drained(&content, |content| {
        let mut dims = Vec::new();
        while !content.is_empty() {
            if !content.peek(LitInt) {
                return Err(content.error("expected an integer: shape dimensions are integer literals"));
            }
            dims.push(content.parse()?);
            if content.is_empty() {
                break;
            }
            content.parse::<Token![,]>()?;
        }
        Ok(dims)
    })?;
    Ok(ShapeDef { bracket, dims })
}

/// `name: Kind { options } => [shape]`.
fn layer(input: ParseStream, errors: &mut Errors) -> syn::Result<LayerDef> {
    if !input.peek(Ident) && input.peek(Ident::peek_any) {
        let keyword = input.call(Ident::parse_any)?;
        return Err(syn::Error::new(
            keyword.span(),
            format!("`{keyword}` is a keyword; name the layer `r#{keyword}` or choose another name"),
        ));
    }
    let name: Ident = input.parse()?;
    let statement = if name == "input" || name == "output" { input.peek(Ident) } else { input.peek(Token![=]) };
    if statement {
        return Err(syn::Error::new(
            name.span(),
            "statements (`input x;`, `h = fc(x): Dense { .. };`, `output h;`) are the graph form: \
             write `graph` after the output shape, as in `struct Net: [8] -> [4] graph { .. }`",
        ));
    }
    if !input.peek(Token![:]) {
        return Err(input.error(format!("expected `:` and a layer kind after the layer name `{name}`")));
    }
    input.parse::<Token![:]>()?;
    if !(input.peek(Ident::peek_any) || input.peek(Token![::])) {
        return Err(input.error("expected a layer kind such as `Dense { units: 10 }` or a network type"));
    }
    let kind: Path = input.parse()?;
    let options = if input.peek(token::Paren) {
        Some(positional(input, &kind)?)
    } else if input.peek(token::Brace) {
        let content;
        let brace = braced!(content in input);
        let entries = list(&content, errors, "options", option);
        let malformed = entries.iter().any(Option::is_none);
        Some(OptionsDef { brace, entries: entries.into_iter().flatten().collect(), malformed })
    } else {
        None
    };
    let assertion = if input.peek(Token![=>]) {
        input.parse::<Token![=>]>()?;
        Some(shape(input)?)
    } else {
        None
    };
    Ok(LayerDef { name, kind, options, assertion })
}

/// `LeakyRelu(0.2)`: a built-in kind with one option takes its value in parentheses,
/// read as `LeakyRelu { alpha: 0.2 }`. Any other kind is told to name its options.
pub(crate) fn positional(input: ParseStream, kind: &Path) -> syn::Result<OptionsDef> {
    let content;
    let paren = parenthesized!(content in input);
    let values = drained(&content, |content| {
        let mut values = Vec::new();
        while !content.is_empty() {
            unnamed(content, &crate::suggest::compact(kind))?;
            values.push(value(content)?);
            if content.is_empty() {
                break;
            }
            content.parse::<Token![,]>()?;
        }
        Ok(values)
    })?;
    let written = crate::suggest::compact(kind);
    let builtin = kind.get_ident().and_then(|i| crate::kinds::find(&i.to_string()));
    let message = match builtin.map(|k| k.options) {
        Some([only]) => match <[Value; 1]>::try_from(values) {
            Ok([value]) => {
                let key = Ident::new(only.name, syn::spanned::Spanned::span(&value));
                let brace = token::Brace { span: paren.span };
                return Ok(OptionsDef { brace, entries: vec![OptionDef { key, value }], malformed: false });
            }
            Err(_) => format!("`{written}` takes one value in parentheses, its `{}`", only.name),
        },
        Some([]) => format!("`{written}` takes no options; remove the parentheses"),
        Some(options) => {
            let names: Vec<String> = options.iter().map(|o| format!("{}: ..", o.name)).collect();
            format!("`{written}` takes its options by name, in braces: `{written} {{ {} }}`", names.join(", "))
        }
        None => format!("a network used as a layer takes no arguments; write `{written}` alone"),
    };
    Err(syn::Error::new(paren.span.join(), message))
}

/// An error at `alpha` in `LeakyRelu(alpha: 0.2)`: a value in parentheses has no name.
fn unnamed(content: ParseStream, written: &str) -> syn::Result<()> {
    if content.peek(Ident) && content.peek2(Token![:]) && !content.peek2(Token![::]) {
        let key: Ident = content.parse()?;
        return Err(syn::Error::new(
            key.span(),
            format!(
                "a value in parentheses is given without its name: `{written}(..)`, or by name in braces, \
                 `{written} {{ {key}: .. }}`"
            ),
        ));
    }
    Ok(())
}

/// `key: value`.
pub(crate) fn option(input: ParseStream, _errors: &mut Errors) -> syn::Result<OptionDef> {
    let key: Ident = input.parse()?;
    if !input.peek(Token![:]) {
        return Err(input.error(format!("expected `:` and a value after the option `{key}`")));
    }
    input.parse::<Token![:]>()?;
    let value = value(input)?;
    Ok(OptionDef { key, value })
}

pub(crate) fn value(input: ParseStream) -> syn::Result<Value> {
    if input.peek(Token![-]) {
        let minus: Token![-] = input.parse()?;
        return match input.parse::<Lit>() {
            Ok(Lit::Int(lit)) => Ok(Value::Int { minus: Some(minus), lit }),
            Ok(Lit::Float(lit)) => Ok(Value::Float { minus: Some(minus), lit }),
            _ => Err(syn::Error::new(minus.span, "expected a number after `-`")),
        };
    }
    if input.peek(Lit) {
        return Ok(match input.parse::<Lit>()? {
            Lit::Int(lit) => Value::Int { minus: None, lit },
            Lit::Float(lit) => Value::Float { minus: None, lit },
            Lit::Bool(b) => Value::Bool(b),
            other => Value::OtherLit(other),
        });
    }
    if input.peek(Ident) || input.peek(Token![::]) {
        let path = Path::parse_mod_style(input)?;
        let args = if input.peek(token::Paren) {
            let content;
            let paren = parenthesized!(content in input);
            let args = drained(&content, |content| {
                let mut args = Vec::new();
                while !content.is_empty() {
                    unnamed(content, &crate::suggest::compact(&path))?;
                    args.push(value(content)?);
                    if content.is_empty() {
                        break;
                    }
                    content.parse::<Token![,]>()?;
                }
                Ok(args)
            })?;
            Some((paren, args))
        } else if input.peek(token::Brace) {
            // `LeakyRelu { alpha: 0.2 }`, as the layer of that kind is written: the
            // value of its one option.
            let content;
            let brace = braced!(content in input);
            let arg = drained(&content, |content| {
                let key: Ident = content.parse()?;
                if key != "alpha" {
                    return Err(syn::Error::new(
                        key.span(),
                        format!("expected `alpha`, the one option of an activation, found `{key}`"),
                    ));
                }
                content.parse::<Token![:]>()?;
                let arg = value(content)?;
                if !content.is_empty() {
                    content.parse::<Token![,]>()?;
                }
                if !content.is_empty() {
                    return Err(content.error("an activation has one option, `alpha`"));
                }
                Ok(arg)
            })?;
            Some((token::Paren(brace.span), vec![arg]))
        } else {
            None
        };
        return Ok(Value::Name { path, args });
    }
    if input.peek(token::Bracket) {
        let content;
        let bracket = bracketed!(content in input);
        let items = drained(&content, |content| {
            let mut items = Vec::new();
            while !content.is_empty() {
                items.push(value(content)?);
                if content.is_empty() {
                    break;
                }
                content.parse::<Token![,]>()?;
            }
            Ok(items)
        })?;
        return Ok(Value::List { bracket, items });
    }
    Err(input.error("expected an option value: a number, `true`, `false` or a name such as `Relu`"))
}

/// A comma-separated list. An item that fails to parse is reported, skipped up to the
/// next comma and kept as `None`; a missing comma before something that looks like
/// the next item (`name:`) is reported without skipping anything.
pub(crate) fn list<T>(
    input: ParseStream,
    errors: &mut Errors,
    items_name: &str,
    mut item: impl FnMut(ParseStream, &mut Errors) -> syn::Result<T>,
) -> Vec<Option<T>> {
    let mut items = Vec::new();
    while !input.is_empty() {
        match item(input, errors) {
            Ok(it) => {
                items.push(Some(it));
                if input.is_empty() {
                    break;
                }
                if input.peek(Token![,]) {
                    let _ = input.parse::<Token![,]>();
                } else {
                    errors.push(input.error(format!("expected `,` between {items_name}")));
                    if !(input.peek(Ident) && input.peek2(Token![:])) {
                        skip_past_comma(input);
                    }
                }
            }
            Err(e) => {
                errors.push(e);
                items.push(None);
                skip_past_comma(input);
            }
        }
    }
    items
}

/// Runs `f` on the contents of a group and, if it fails, skips the rest of the
/// contents: syn reports tokens left in a group as an extra "unexpected token" error
/// for the whole invocation, which would hide the rest of the input.
pub(crate) fn drained<T>(content: ParseStream, f: impl FnOnce(ParseStream) -> syn::Result<T>) -> syn::Result<T> {
    let result = f(content);
    if result.is_err() {
        let _ = content.step(|cursor| {
            let mut rest = *cursor;
            while let Some((_, next)) = rest.token_tree() {
                rest = next;
            }
            Ok(((), rest))
        });
    }
    result
}

/// Skips token trees up to and including the next top-level comma.
pub(crate) fn skip_past_comma(input: ParseStream) {
    let _ = input.step(|cursor| {
        let mut rest = *cursor;
        while let Some((tt, next)) = rest.token_tree() {
            rest = next;
            if matches!(&tt, TokenTree::Punct(p) if p.as_char() == ',') {
                break;
            }
        }
        Ok(((), rest))
    });
}

/// Skips token trees up to the next `{ ... }` group, leaving it unconsumed.
fn skip_to_body(input: ParseStream) {
    let _ = input.step(|cursor| {
        let mut rest = *cursor;
        while !rest.eof() {
            if rest.group(proc_macro2::Delimiter::Brace).is_some() {
                break;
            }
            match rest.token_tree() {
                Some((_, next)) => rest = next,
                None => break,
            }
        }
        Ok(((), rest))
    });
}

/// Skips token trees up to and including the next `{ ... }` group.
pub(crate) fn skip_past_body(input: ParseStream) {
    skip_to_body(input);
    let _ = input.step(|cursor| match cursor.token_tree() {
        Some((_, next)) => Ok(((), next)),
        None => Ok(((), *cursor)),
    });
}
