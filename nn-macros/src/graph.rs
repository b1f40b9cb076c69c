//! The graph form of `network!`: named values computed by statements.
//!
//! ```text
//! graph     := `graph` `{` statement* `}`
//! statement := `input` value `;`
//!            | `output` value `;`
//!            | value `=` call (`=>` shape)? `;`
//! call      := merge `(` value,+ (`,` `axis` `:` integer)? `)`
//!            | layer `(` value `)` (`:` path (options | `(` value `)`)?)?
//! merge     := `add` | `subtract` | `multiply` | `concat`
//! ```
//!
//! A layer is declared, with its kind, where it is first applied; applying it again by
//! name alone shares its parameters. `tied: enc` in the options of a `Dense` layer
//! makes its weight the transpose of the `Dense` layer `enc`'s, with a bias of its own.
//!
//! The same phases as the sequential form: `parse_body` reads the statements,
//! `lower` resolves values, layers and shapes in statement order (so a value used
//! before it is defined, a cycle, an unused value and a mismatched merge are spanned
//! errors), and `expand` writes the `Layer` and `Network` impls, whose passes run the
//! statements in order (forward) and in reverse (backward).
use proc_macro2::{Literal, Span, TokenStream};
use quote::{format_ident, quote};
use syn::parse::ParseStream;
use syn::{parenthesized, token, Ident, LitInt, Path, Token};

use crate::errors::Errors;
use crate::expand::{self, Checks};
use crate::ir::{self, shape_type, unraw, DeclaredShape, Op, ShapeInfo, Source};
use crate::kinds::Activation;
use crate::parse::{self, LayerDef, NetworkDef, OptionDef, OptionsDef, ShapeDef, Value};
use crate::suggest;

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
    /// `h = fc1(x): Dense { units: 8 } => [8];`
    Assign { value: Ident, call: Box<Call>, assertion: Option<ShapeDef> },
}

pub(crate) enum Call {
    /// `fc1(x)`, with the layer's declaration at its first use.
    Layer { layer: Ident, paren: token::Paren, args: Vec<Ident>, decl: Option<LayerDef>, tied: Option<(Ident, Ident)> },
    /// `add(x, y)`, `concat(a, b, axis: 1)`.
    Merge { op: Ident, paren: token::Paren, args: Vec<Ident>, axis: Option<LitInt> },
}

impl Call {
    fn args(&self) -> &[Ident] {
        match self {
            Call::Layer { args, .. } | Call::Merge { args, .. } => args,
        }
    }

    /// The span of the call from its name to its closing parenthesis.
    fn span(&self) -> Span {
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
    while !input.is_empty() {
        match statement(input) {
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

fn statement(input: ParseStream) -> syn::Result<Stmt> {
    let first: Ident = input.parse().map_err(|_| {
        input.error("expected a statement: `input x;`, `h = fc1(x): Dense { units: 8 };` or `output h;`")
    })?;
    let stmt = if (first == "input" || first == "output") && !input.peek(Token![=]) {
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
        Stmt::Assign { value: first, call: Box::new(call), assertion }
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

/// A network in the graph form, lowered.
pub(crate) struct Graph {
    /// Name, attributes and declared shapes (`layers` is empty).
    pub net: ir::Network,
    pub values: Vec<ValueInfo>,
    pub layers: Vec<GraphLayer>,
    pub nodes: Vec<Node>,
    /// The values that are the network's inputs and outputs, in declared order.
    pub inputs: Vec<usize>,
    pub outputs: Vec<usize>,
    /// The declared input and output shapes (`None` if invalid, already reported).
    pub input_shapes: Vec<Option<Vec<usize>>>,
    pub output_shapes: Vec<Option<Vec<usize>>>,
    /// Shape equalities left to the type system: (span, actual, expected, message, label).
    pub type_checks: Vec<(Span, TokenStream, TokenStream, String, String)>,
}

pub(crate) struct ValueInfo {
    pub name: Ident,
    pub shape: ShapeInfo,
    pub input: bool,
    pub uses: usize,
}

pub(crate) enum GraphLayer {
    /// A layer of the sequential form's kinds, or a network used as a layer.
    Plain(ir::Layer),
    /// A dense layer using the transpose of layer `target`'s weight.
    Tied { name: Ident, target: usize, inputs: usize, outputs: usize, activation: Activation, bias: bool },
}

impl GraphLayer {
    fn name(&self) -> &Ident {
        match self {
            GraphLayer::Plain(l) => &l.name,
            GraphLayer::Tied { name, .. } => name,
        }
    }
}

pub(crate) struct Node {
    pub op: NodeOp,
    pub args: Vec<usize>,
    pub out: usize,
}

pub(crate) enum NodeOp {
    Apply(usize),
    Add,
    /// `a - b`, of two values.
    Subtract,
    Multiply,
    /// Per operand, the floats of one block (see `nn_core::graph::concat`).
    Concat(Vec<usize>),
}

/// Lowers and validates a graph network.
pub(crate) fn lower(def: &NetworkDef, graph: &GraphDef, errors: &mut Errors) -> Graph {
    let input = def.signature.as_ref().map(|s| crate::lower::declared(&s.input, errors));
    let output = def.signature.as_ref().map(|s| crate::lower::declared(&s.output, errors));
    let net_name = unraw(&def.name);
    let mut g = Graph {
        net: ir::Network {
            attrs: def.attrs.clone(),
            vis: def.vis.clone(),
            name: def.name.clone(),
            input,
            output,
            layers: Vec::new(),
        },
        values: Vec::new(),
        layers: Vec::new(),
        nodes: Vec::new(),
        inputs: Vec::new(),
        outputs: Vec::new(),
        input_shapes: Vec::new(),
        output_shapes: Vec::new(),
        type_checks: Vec::new(),
    };
    let mut output_spans = Vec::new();
    if let Some(sig) = &def.signature {
        g.input_shapes.push(g.net.input.as_ref().and_then(|d| d.dims.clone()));
        g.output_shapes.push(g.net.output.as_ref().and_then(|d| d.dims.clone()));
        output_spans.push(sig.output.span());
        for extra in &sig.more_inputs {
            g.input_shapes.push(crate::lower::declared(extra, errors).dims);
        }
        for extra in &sig.more_outputs {
            g.output_shapes.push(crate::lower::declared(extra, errors).dims);
            output_spans.push(extra.span());
        }
    }
    let stmts: Vec<&Stmt> = graph.statements.iter().flatten().collect();
    // Where each assigned value is defined, for the diagnosis of a use before it.
    let definitions: Vec<(&Ident, usize)> = stmts
        .iter()
        .enumerate()
        .filter_map(|(i, s)| match s {
            Stmt::Assign { value, .. } => Some((value, i)),
            _ => None,
        })
        .collect();
    let mut saw_input = false;
    let mut saw_output = false;
    // After a statement that did not parse (already reported), names it would have
    // defined are unknown and values it would have used look unused: those
    // consequences are not reported again. Nor are unused values when the input or
    // output statement is missing or names the wrong number of values.
    let recovering = graph.statements.iter().any(Option::is_none);
    let mut counts_wrong = false;
    let mut output_names: Vec<&Ident> = Vec::new();
    for (index, stmt) in stmts.iter().enumerate() {
        match stmt {
            Stmt::Input { keyword, names } => {
                let declared = def.signature.as_ref().map(|_| g.input_shapes.len());
                let Some(counts_right) =
                    io_statement(keyword, names, "a, b", &mut saw_input, declared, &net_name, errors)
                else {
                    continue;
                };
                counts_wrong |= !counts_right;
                for (k, name) in names.iter().enumerate() {
                    let shape = match g.input_shapes.get(k).cloned().flatten() {
                        Some(dims) => ShapeInfo::Known(dims),
                        None => ShapeInfo::Unknown,
                    };
                    let v = define(&mut g, name, shape, true, errors);
                    g.inputs.push(v);
                }
            }
            Stmt::Output { keyword, names } => {
                let declared = def.signature.as_ref().map(|_| g.output_shapes.len());
                let Some(counts_right) =
                    io_statement(keyword, names, "y, z", &mut saw_output, declared, &net_name, errors)
                else {
                    continue;
                };
                counts_wrong |= !counts_right;
                for (k, name) in names.iter().enumerate() {
                    let Some(v) = resolve(&g, name, (index, recovering), &stmts, &definitions, None, errors) else {
                        continue;
                    };
                    g.values[v].uses += 1;
                    if g.values[v].input {
                        errors.spanned(
                            name,
                            format!("an output must be computed by the graph, but `{}` is an input", unraw(name)),
                        );
                        continue;
                    }
                    if g.outputs.contains(&v) {
                        errors.spanned(name, format!("`{}` is already an output", unraw(name)));
                        continue;
                    }
                    output_names.push(name);
                    g.outputs.push(v);
                    let declared = g.output_shapes.get(k).cloned().flatten();
                    let output_span = output_spans.get(k).copied();
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
            }
            Stmt::Assign { value, call, assertion } => {
                let args: Vec<Option<usize>> = call
                    .args()
                    .iter()
                    .map(|a| resolve(&g, a, (index, recovering), &stmts, &definitions, Some(value), errors))
                    .collect();
                for v in args.iter().flatten() {
                    g.values[*v].uses += 1;
                }
                let shape = if args.iter().all(Option::is_some) {
                    let args: Vec<usize> = args.into_iter().flatten().collect();
                    assign(&mut g, call, args, errors)
                } else {
                    ShapeInfo::Unknown
                };
                let shape = assert_shape(&mut g, value, shape, assertion.as_ref(), errors);
                let v = define(&mut g, value, shape, false, errors);
                if let Some(node) = g.nodes.last_mut() {
                    if node.out == usize::MAX {
                        node.out = v;
                    }
                }
            }
        }
    }
    if !saw_input && !recovering {
        errors.at(graph.body, format!("`{net_name}` has no `input` statement; name its input, as in `input x;`"));
    }
    if !saw_output && !recovering {
        errors.at(graph.body, format!("`{net_name}` has no `output` statement; name its output, as in `output y;`"));
    }
    // After a name that did not resolve, an "unused" value may be the one it meant.
    let unresolved = stmts.iter().enumerate().any(|(i, s)| match s {
        Stmt::Assign { call, .. } => call.args().iter().any(|a| !defined_before(&stmts, i, a)),
        Stmt::Output { names, .. } => names.iter().any(|a| !defined_before(&stmts, i, a)),
        Stmt::Input { .. } => false,
    });
    let quiet = unresolved || recovering || counts_wrong || !saw_input || !saw_output;
    for value in g.values.iter().filter(|_| !quiet) {
        if value.uses == 0 && !output_names.contains(&&value.name) {
            let name = unraw(&value.name);
            if value.input {
                errors.spanned(&value.name, format!("input `{name}` is never used"));
            } else {
                errors.spanned(&value.name, format!("`{name}` is never used; use it or remove its statement"));
            }
        }
    }
    let _ = graph.keyword;
    g
}

/// The checks an `input` and an `output` statement share, `keyword` naming which.
/// A second statement of the kind is reported and gives `None` (the caller skips it);
/// otherwise `seen` is set and the result says whether the statement names one value
/// per shape the signature declares (`declared`, `None` without a signature), a
/// mismatch being reported. `example` is two value names for the first message.
fn io_statement(
    keyword: &Ident,
    names: &[Ident],
    example: &str,
    seen: &mut bool,
    declared: Option<usize>,
    net_name: &str,
    errors: &mut Errors,
) -> Option<bool> {
    if *seen {
        errors.spanned(
            keyword,
            format!("a second `{keyword}` statement; name every {keyword} in one, as in `{keyword} {example};`"),
        );
        return None;
    }
    *seen = true;
    match declared {
        Some(declared) if names.len() != declared => {
            errors.spanned(
                quote!(#keyword #(#names)*),
                format!(
                    "`{net_name}` declares {}, so `{keyword}` names {}",
                    counted(declared, &format!("{keyword} shape")),
                    counted(declared, "value")
                ),
            );
            Some(false)
        }
        _ => Some(true),
    }
}

/// `one value`, `2 values`.
fn counted(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("one {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// Whether `name` is an input or assigned value defined by a statement before `index`.
fn defined_before(stmts: &[&Stmt], index: usize, name: &Ident) -> bool {
    stmts[..index].iter().any(|s| match s {
        Stmt::Input { names, .. } => names.contains(name),
        Stmt::Assign { value, .. } => value == name,
        Stmt::Output { .. } => false,
    })
}

/// Defines value `name`, reporting a second definition.
fn define(g: &mut Graph, name: &Ident, shape: ShapeInfo, input: bool, errors: &mut Errors) -> usize {
    if let Some(first) = g.values.iter().find(|v| v.name == *name) {
        let first_span = first.name.span();
        errors.spanned(name, format!("value `{}` is defined twice", unraw(name)));
        errors.at(first_span, format!("`{}` is first defined here", unraw(name)));
    }
    g.values.push(ValueInfo { name: name.clone(), shape, input, uses: 0 });
    g.values.len() - 1
}

/// The value a name refers to at statement `index`, or the reason it refers to none:
/// it is defined later (and, if that definition needs `defining`, a cycle), or nowhere
/// (not reported while `recovering` from a statement that did not parse).
fn resolve(
    g: &Graph,
    name: &Ident,
    (index, recovering): (usize, bool),
    stmts: &[&Stmt],
    definitions: &[(&Ident, usize)],
    defining: Option<&Ident>,
    errors: &mut Errors,
) -> Option<usize> {
    if let Some(v) = g.values.iter().rposition(|v| v.name == *name) {
        return Some(v);
    }
    let word = unraw(name);
    let later = definitions.iter().find(|(n, at)| *n == name && *at >= index);
    match later {
        Some(&(_, at)) => {
            if let Some(path) = defining.and_then(|d| cycle(d, at, stmts, definitions)) {
                let path: Vec<String> = path.iter().map(|n| format!("`{n}`")).collect();
                errors.spanned(name, format!("cycle: {}", path.join(" needs ")));
            } else {
                errors
                    .spanned(name, format!("`{word}` is used before it is defined; move its statement above this one"));
            }
        }
        None if recovering => {}
        None => {
            let known = g.values.iter().map(|v| unraw(&v.name)).collect::<Vec<_>>();
            let hint = match suggest::closest(&word, known.iter().map(String::as_str)) {
                Some(c) => format!("; did you mean `{c}`?"),
                None => String::new(),
            };
            errors.spanned(name, format!("unknown value `{word}`{hint}"));
        }
    }
    None
}

/// If the definition at statement `at` needs `target`, directly or through other
/// values, the chain of names from `target` back to itself.
fn cycle(target: &Ident, at: usize, stmts: &[&Stmt], definitions: &[(&Ident, usize)]) -> Option<Vec<String>> {
    let mut path = vec![unraw(target)];
    let mut seen = Vec::new();
    fn visit(
        at: usize,
        target: &Ident,
        stmts: &[&Stmt],
        definitions: &[(&Ident, usize)],
        path: &mut Vec<String>,
        seen: &mut Vec<usize>,
    ) -> bool {
        if seen.contains(&at) {
            return false;
        }
        seen.push(at);
        let Stmt::Assign { value, call, .. } = stmts[at] else { return false };
        path.push(unraw(value));
        for arg in call.args() {
            if arg == target {
                path.push(unraw(target));
                return true;
            }
            if let Some(&(_, next)) = definitions.iter().find(|(n, _)| *n == arg) {
                if visit(next, target, stmts, definitions, path, seen) {
                    return true;
                }
            }
        }
        path.pop();
        false
    }
    visit(at, target, stmts, definitions, &mut path, &mut seen).then_some(path)
}

/// Lowers one call, pushing its node (output not yet set), and returns its shape.
fn assign(g: &mut Graph, call: &Call, args: Vec<usize>, errors: &mut Errors) -> ShapeInfo {
    match call {
        Call::Merge { op, args: arg_names, axis, .. } => {
            let op_name = op.to_string();
            if args.len() < 2 {
                errors.at(call.span(), format!("`{op_name}` merges two or more values"));
                return ShapeInfo::Unknown;
            }
            if op_name == "subtract" && args.len() != 2 {
                errors.at(call.span(), format!("`subtract` takes two values, `a - b`, but is given {}", args.len()));
                return ShapeInfo::Unknown;
            }
            let shapes: Vec<&ShapeInfo> = args.iter().map(|&v| &g.values[v].shape).collect();
            if shapes.iter().any(|s| matches!(s, ShapeInfo::Unknown)) {
                return ShapeInfo::Unknown;
            }
            if op_name == "concat" {
                let mut dims_of = Vec::new();
                for (s, n) in shapes.iter().zip(arg_names) {
                    match s {
                        ShapeInfo::Known(d) => dims_of.push(d.clone()),
                        _ => {
                            errors.spanned(
                                n,
                                format!(
                                    "`concat` needs shapes the macro knows, and `{}` is only a type; assert its shape \
                                     where it is defined, as in `=> [8]`",
                                    unraw(n)
                                ),
                            );
                            return ShapeInfo::Unknown;
                        }
                    }
                }
                let rank = dims_of[0].len();
                let axis_value = match axis {
                    Some(lit) => match lit.base10_parse::<usize>() {
                        Ok(a) if a < rank => a,
                        _ => {
                            errors.spanned(
                                lit,
                                format!("the axis of `concat` is 0 to {} for shapes of rank {rank}", rank - 1),
                            );
                            return ShapeInfo::Unknown;
                        }
                    },
                    None => 0,
                };
                let mut out = dims_of[0].clone();
                for (i, d) in dims_of.iter().enumerate().skip(1) {
                    let fits = d.len() == rank && (0..rank).all(|k| k == axis_value || d[k] == dims_of[0][k]);
                    if !fits {
                        errors.at(
                            call.span(),
                            format!(
                                "`concat` along axis {axis_value} needs the other dimensions equal, but `{}` is {} and \
                                 `{}` is {}",
                                unraw(&arg_names[0]),
                                suggest::dims(&dims_of[0]),
                                unraw(&arg_names[i]),
                                suggest::dims(d)
                            ),
                        );
                        return ShapeInfo::Unknown;
                    }
                    out[axis_value] += d[axis_value];
                }
                let blocks = dims_of.iter().map(|d| d[axis_value..].iter().product()).collect();
                g.nodes.push(Node { op: NodeOp::Concat(blocks), args, out: usize::MAX });
                return ShapeInfo::Known(out);
            }
            // `add`, `subtract` and `multiply`: one shape.
            let first = shapes[0].clone();
            for (i, s) in shapes.iter().enumerate().skip(1) {
                match (&first, s) {
                    (ShapeInfo::Known(a), ShapeInfo::Known(b)) => {
                        if a != b {
                            errors.at(
                                call.span(),
                                format!(
                                    "`{op_name}` needs values of one shape, but `{}` is {} and `{}` is {}",
                                    unraw(&arg_names[0]),
                                    suggest::dims(a),
                                    unraw(&arg_names[i]),
                                    suggest::dims(b)
                                ),
                            );
                            return ShapeInfo::Unknown;
                        }
                    }
                    _ => g.type_checks.push((
                        arg_names[i].span(),
                        s.ty(),
                        first.ty(),
                        format!(
                            "`{op_name}` needs values of one shape, but `{}` is `{{Self}}` and `{}` is `{{Expected}}`",
                            expand::escape(&unraw(&arg_names[i])),
                            expand::escape(&unraw(&arg_names[0]))
                        ),
                        format!("`{}` is `{{Self}}`", expand::escape(&unraw(&arg_names[i]))),
                    )),
                }
            }
            let op = match op_name.as_str() {
                "add" => NodeOp::Add,
                "subtract" => NodeOp::Subtract,
                _ => NodeOp::Multiply,
            };
            g.nodes.push(Node { op, args, out: usize::MAX });
            first
        }
        Call::Layer { layer, args: arg_names, decl, tied, .. } => {
            if args.len() != 1 {
                errors.at(
                    call.span(),
                    format!("a layer takes one value, but `{}` is given {}", unraw(layer), args.len()),
                );
                return ShapeInfo::Unknown;
            }
            let arg = args[0];
            let input = g.values[arg].shape.clone();
            let existing = g.layers.iter().position(|l| l.name() == layer);
            match (decl, existing) {
                (Some(_), Some(_)) => {
                    errors.spanned(
                        layer,
                        format!(
                            "layer `{0}` is declared twice; to apply it again, sharing its parameters, write \
                             `{0}(value)` without a kind",
                            unraw(layer)
                        ),
                    );
                    ShapeInfo::Unknown
                }
                (None, None) => {
                    errors.spanned(
                        layer,
                        format!(
                            "layer `{0}` is not declared; declare it where it is first applied, as in \
                             `{0}(x): Dense {{ units: 8 }}`",
                            unraw(layer)
                        ),
                    );
                    ShapeInfo::Unknown
                }
                (None, Some(l)) => {
                    // A shared layer: its input shape is that of its first use.
                    let (expected, output) = match &g.layers[l] {
                        GraphLayer::Plain(p) => (p.input.clone(), p.output.clone()),
                        GraphLayer::Tied { inputs, outputs, .. } => {
                            (ShapeInfo::Known(vec![*inputs]), ShapeInfo::Known(vec![*outputs]))
                        }
                    };
                    match (&input, &expected) {
                        (ShapeInfo::Known(a), ShapeInfo::Known(b)) if a != b => {
                            errors.spanned(
                                &arg_names[0],
                                format!(
                                    "`{}` takes {} (its first use), but `{}` is {}",
                                    unraw(layer),
                                    suggest::dims(b),
                                    unraw(&arg_names[0]),
                                    suggest::dims(a)
                                ),
                            );
                            return ShapeInfo::Unknown;
                        }
                        (ShapeInfo::Known(_), ShapeInfo::Known(_))
                        | (ShapeInfo::Unknown, _)
                        | (_, ShapeInfo::Unknown) => {}
                        _ => g.type_checks.push((
                            arg_names[0].span(),
                            input.ty(),
                            expected.ty(),
                            format!(
                                "shape mismatch: `{}` takes `{{Expected}}` (its first use), but `{}` is `{{Self}}`",
                                expand::escape(&unraw(layer)),
                                expand::escape(&unraw(&arg_names[0]))
                            ),
                            format!("`{}` takes `{{Expected}}`", expand::escape(&unraw(layer))),
                        )),
                    }
                    g.nodes.push(Node { op: NodeOp::Apply(l), args, out: usize::MAX });
                    output
                }
                (Some(decl), None) => {
                    let source = Source::Layer(arg_names[0].clone());
                    if let Some((key, target)) = tied {
                        return tied_layer(g, decl, key, target, input, &arg_names[0], args, errors);
                    }
                    let lowered = crate::lower::lower_layer(decl, input, source, None, errors);
                    let output = lowered.output.clone();
                    if matches!(lowered.op, Op::Invalid) {
                        return ShapeInfo::Unknown;
                    }
                    g.layers.push(GraphLayer::Plain(lowered));
                    g.nodes.push(Node { op: NodeOp::Apply(g.layers.len() - 1), args, out: usize::MAX });
                    output
                }
            }
        }
    }
}

/// A `Dense` layer with `tied: target`.
#[allow(clippy::too_many_arguments)]
fn tied_layer(
    g: &mut Graph,
    decl: &LayerDef,
    key: &Ident,
    target: &Ident,
    input: ShapeInfo,
    arg_name: &Ident,
    args: Vec<usize>,
    errors: &mut Errors,
) -> ShapeInfo {
    if !decl.kind.is_ident("Dense") {
        errors.spanned(key, "`tied` is an option of `Dense` layers in a graph");
        return ShapeInfo::Unknown;
    }
    let found = g.layers.iter().position(|l| l.name() == target);
    let Some(t) = found else {
        errors.spanned(
            target,
            format!(
                "`tied: {}` names no layer declared before this one; tie to an earlier `Dense` layer",
                unraw(target)
            ),
        );
        return ShapeInfo::Unknown;
    };
    let (units, features) = match &g.layers[t] {
        GraphLayer::Plain(ir::Layer { op: Op::Builtin { kind, args }, input: ShapeInfo::Known(dims), .. })
            if kind.name == "Dense" && dims.len() == 1 =>
        {
            (args.count("units"), dims[0])
        }
        _ => {
            errors.spanned(
                target,
                format!(
                    "`{}` is not a `Dense` layer with a vector input, so it has no weight to tie to",
                    unraw(target)
                ),
            );
            return ShapeInfo::Unknown;
        }
    };
    // The options as those of a `Dense` from `units` to `features`.
    let mut decl = decl.clone();
    let mut options = decl.options.take().unwrap_or_else(|| OptionsDef {
        brace: token::Brace(key.span()),
        entries: Vec::new(),
        malformed: false,
    });
    if let Some(entry) = options.entries.iter().find(|e| e.key == "units") {
        if let Value::Int { minus: None, lit } = &entry.value {
            if lit.base10_parse::<usize>().ok() != Some(features) {
                errors.spanned(
                    &entry.value,
                    format!(
                        "a layer tied to `{}` has {features} units, the inputs of `{}`",
                        unraw(target),
                        unraw(target)
                    ),
                );
                return ShapeInfo::Unknown;
            }
        }
    } else {
        options.entries.push(OptionDef {
            key: Ident::new("units", key.span()),
            value: Value::Int { minus: None, lit: LitInt::new(&features.to_string(), key.span()) },
        });
    }
    decl.options = Some(options);
    let lowered = crate::lower::lower_layer(&decl, input.clone(), Source::Layer(arg_name.clone()), None, errors);
    let Op::Builtin { args: resolved, .. } = &lowered.op else { return ShapeInfo::Unknown };
    match &input {
        ShapeInfo::Known(dims) if *dims != [units] => {
            // Reported by `lower_layer` when the rank differs.
            if dims.len() == 1 {
                errors.spanned(
                    arg_name,
                    format!(
                        "`{}` is tied to `{}`, so it takes [{units}], but `{}` is {}",
                        unraw(&decl.name),
                        unraw(target),
                        unraw(arg_name),
                        suggest::dims(dims)
                    ),
                );
            }
            return ShapeInfo::Unknown;
        }
        ShapeInfo::Opaque(ty) => g.type_checks.push((
            arg_name.span(),
            ty.clone(),
            shape_type(&[units]),
            format!(
                "shape mismatch: `{}` is tied to `{}`, so it takes [{units}], but `{}` is `{{Self}}`",
                expand::escape(&unraw(&decl.name)),
                expand::escape(&unraw(target)),
                expand::escape(&unraw(arg_name))
            ),
            format!("takes [{units}]"),
        )),
        _ => {}
    }
    g.layers.push(GraphLayer::Tied {
        name: decl.name.clone(),
        target: t,
        inputs: units,
        outputs: features,
        activation: resolved.activation("activation"),
        bias: resolved.flag("bias"),
    });
    g.nodes.push(Node { op: NodeOp::Apply(g.layers.len() - 1), args, out: usize::MAX });
    ShapeInfo::Known(vec![features])
}

/// Applies a `=> [..]` assertion: a known shape is compared now, a type-only one by
/// the type system; either way the value's shape is then the asserted one.
fn assert_shape(
    g: &mut Graph,
    value: &Ident,
    shape: ShapeInfo,
    assertion: Option<&ShapeDef>,
    errors: &mut Errors,
) -> ShapeInfo {
    let Some(assertion) = assertion else { return shape };
    let DeclaredShape { span, dims } = crate::lower::declared(assertion, errors);
    let Some(dims) = dims else { return shape };
    match &shape {
        ShapeInfo::Known(actual) if *actual != dims => {
            errors.at(span, format!("`{}` is {}, not {}", unraw(value), suggest::dims(actual), suggest::dims(&dims)));
            ShapeInfo::Unknown
        }
        ShapeInfo::Opaque(ty) => {
            g.type_checks.push((
                span,
                ty.clone(),
                shape_type(&dims),
                format!("`{}` is `{{Self}}`, not {}", expand::escape(&unraw(value)), suggest::dims(&dims)),
                String::from("asserted here"),
            ));
            ShapeInfo::Known(dims)
        }
        _ => shape,
    }
}

/// The Rust items of a graph network without errors.
pub(crate) fn expand(g: &Graph) -> TokenStream {
    let net = &g.net;
    let name = &net.name;
    let item = expand::struct_item(net);
    let mut checks = Checks::default();
    let multi = g.inputs.len() > 1 || g.outputs.len() > 1;
    let numbered = |base: &str, n: usize| -> Vec<Ident> {
        if multi {
            (0..n).map(|k| format_ident!("{}{}", base, k)).collect()
        } else {
            vec![format_ident!("{}", base)]
        }
    };
    let (xs, ys) = (numbered("x", g.inputs.len()), numbered("y", g.outputs.len()));
    let (dys, dxs) = (numbered("dy", g.outputs.len()), numbered("dx", g.inputs.len()));
    let shape_ty = |d: &Option<Vec<usize>>| shape_type(d.as_deref().unwrap_or(&[1]));
    let input_tys: Vec<TokenStream> = g.input_shapes.iter().map(shape_ty).collect();
    let input_of = |v: usize| g.inputs.iter().position(|&i| i == v).expect("an input value");
    let output_of = |v: usize| g.outputs.iter().position(|&o| o == v);
    let (x0, in0) = (&xs[0], &input_tys[0]);

    // The layers: a type, a constant value, and their sizes.
    let mut layer_items = Vec::new();
    let mut sizes = Vec::new(); // (params, buffers, cache, scratch) expressions
    let mut forward_scratches = Vec::new();
    let mut tensors = Vec::new(); // (name, tensor tree) of each layer
    for (k, layer) in g.layers.iter().enumerate() {
        let ty_name = format_ident!("__NnL{}", k);
        let const_name = format_ident!("__NN_L{}", k);
        match layer {
            GraphLayer::Plain(l) => {
                let crate::kinds::Emitted { ty, value } = expand::layer(l, &mut checks);
                let layer_name = unraw(&l.name);
                layer_items.push(quote! {
                    type #ty_name = ::nn_core::__private::Named<#ty>;
                    const #const_name: #ty_name = ::nn_core::__private::Named { name: #layer_name, layer: #value };
                });
                sizes.push((
                    quote!(<#ty_name as ::nn_core::Layer>::PARAMS),
                    quote!(<#ty_name as ::nn_core::Layer>::BUFFERS),
                    quote!(<#ty_name as ::nn_core::Layer>::CACHE),
                    quote!(<#ty_name as ::nn_core::Layer>::SCRATCH),
                ));
                forward_scratches.push(quote!(<#ty_name as ::nn_core::Layer>::FORWARD_SCRATCH));
                tensors.push((layer_name, quote!(<#ty as ::nn_core::Layer>::TENSORS)));
            }
            GraphLayer::Tied { name, inputs, outputs, activation, bias, .. } => {
                let (i, o) = (Literal::usize_unsuffixed(*inputs), Literal::usize_unsuffixed(*outputs));
                // Its one tensor of its own, the bias.
                let tree = if *bias {
                    quote!(&::nn_core::weights::TensorTree::Leaf { name: "bias", shape: &[#o], trainable: true })
                } else {
                    quote!(&::nn_core::weights::TensorTree::Empty)
                };
                tensors.push((unraw(name), tree));
                forward_scratches.push(quote!(0));
                layer_items.push(quote! {
                    type #ty_name = ::nn_core::graph::TiedDense<#i, #o, #bias>;
                    const #const_name: #ty_name = ::nn_core::graph::TiedDense::new(#activation);
                });
                sizes.push((quote!(<#ty_name>::PARAMS), quote!(0), quote!(<#ty_name>::CACHE), quote!(0)));
            }
        }
    }
    for (span, actual, expected, message, label) in &g.type_checks {
        checks.same(*span, actual.clone(), expected.clone(), message, label);
    }
    // Offsets of each layer's parameters and buffers.
    let mut offsets = Vec::new();
    for k in 0..g.layers.len() {
        let p = format_ident!("__NN_P{}", k);
        let b = format_ident!("__NN_B{}", k);
        if k == 0 {
            offsets.push(quote!(const #p: usize = 0; const #b: usize = 0;));
        } else {
            let (pp, pb) = (format_ident!("__NN_P{}", k - 1), format_ident!("__NN_B{}", k - 1));
            let (sp, sb, _, _) = &sizes[k - 1];
            offsets.push(quote!(const #p: usize = #pp + #sp; const #b: usize = #pb + #sb;));
        }
    }
    let total_params: Vec<&TokenStream> = sizes.iter().map(|s| &s.0).collect();
    let total_buffers: Vec<&TokenStream> = sizes.iter().map(|s| &s.1).collect();
    // Per-sample lengths of the values.
    let mut value_lens = Vec::new();
    for (i, v) in g.values.iter().enumerate() {
        let c = format_ident!("__NN_V{}", i);
        let len = if v.input {
            let ty = &input_tys[input_of(i)];
            quote!(<#ty as ::nn_core::Shape>::LEN)
        } else {
            v.shape.len()
        };
        value_lens.push(quote!(const #c: usize = #len;));
    }
    let vlen = |i: usize| {
        let c = format_ident!("__NN_V{}", i);
        quote!(#c)
    };
    let internal: Vec<usize> = (0..g.values.len()).filter(|&i| !g.values[i].input && output_of(i).is_none()).collect();
    let internal_lens: Vec<TokenStream> = internal.iter().map(|&i| vlen(i)).collect();
    let all_lens: Vec<TokenStream> = (0..g.values.len()).map(vlen).collect();
    let node_caches: Vec<TokenStream> = g
        .nodes
        .iter()
        .filter_map(|n| match n.op {
            NodeOp::Apply(k) => Some(sizes[k].2.clone()),
            _ => None,
        })
        .collect();
    let scratches: Vec<&TokenStream> = sizes.iter().map(|s| &s.3).collect();

    let v = |i: usize| format_ident!("__v{}", i);
    let gr = |i: usize| format_ident!("__g{}", i);
    let cache_of = |n: usize| format_ident!("__c{}", n);
    let p_range = |k: usize| {
        let p = format_ident!("__NN_P{}", k);
        let n = &sizes[k].0;
        quote!(#p..#p + #n)
    };
    let b_range = |k: usize| {
        let b = format_ident!("__NN_B{}", k);
        let n = &sizes[k].1;
        quote!(#b..#b + #n)
    };
    // The range of a tied layer's target weight.
    let weight_range = |t: usize, inputs: usize, outputs: usize| {
        let p = format_ident!("__NN_P{}", t);
        let n = Literal::usize_unsuffixed(inputs * outputs);
        quote!(#p..#p + #n)
    };
    let read = |i: usize| {
        let v = v(i);
        quote!(&*#v)
    };

    // Value storage: inputs are `x`, the output is `y`, the others are split off a buffer.
    let bind_values = |buffer: &Ident, mutable: bool| -> TokenStream {
        let mut out = TokenStream::new();
        for (i, value) in g.values.iter().enumerate() {
            let name = v(i);
            if value.input {
                let x = &xs[input_of(i)];
                out.extend(quote!(let #name: &[f32] = #x;));
            } else if let Some(j) = output_of(i) {
                let y = &ys[j];
                if mutable {
                    out.extend(quote!(let #name: &mut [f32] = #y;));
                } else {
                    out.extend(quote!(let #name: &[f32] = #y;));
                }
            } else {
                let len = vlen(i);
                if mutable {
                    out.extend(quote!(let (#name, #buffer) = #buffer.split_at_mut(batch * #len);));
                } else {
                    out.extend(quote!(let (#name, #buffer) = #buffer.split_at(batch * #len);));
                }
            }
        }
        out
    };
    let bind_caches = |mutable: bool| -> TokenStream {
        let mut out = TokenStream::new();
        for (n, node) in g.nodes.iter().enumerate() {
            if let NodeOp::Apply(k) = node.op {
                let c = cache_of(n);
                let len = &sizes[k].2;
                if mutable {
                    out.extend(quote!(let (#c, cache) = cache.split_at_mut(batch * #len);));
                } else {
                    out.extend(quote!(let (#c, cache) = cache.split_at(batch * #len);));
                }
            }
        }
        out
    };

    // Forward passes.
    let mut forward_body = TokenStream::new();
    let mut train_body = TokenStream::new();
    for (n, node) in g.nodes.iter().enumerate() {
        let out = v(node.out);
        let reads: Vec<TokenStream> = node.args.iter().map(|&a| read(a)).collect();
        match &node.op {
            NodeOp::Apply(k) => {
                let l = format_ident!("__NN_L{}", k);
                let x = &reads[0];
                let c = cache_of(n);
                match &g.layers[*k] {
                    GraphLayer::Plain(_) => {
                        let (pr, br) = (p_range(*k), b_range(*k));
                        forward_body.extend(quote! {
                            ::nn_core::Layer::forward(&#l, &params[#pr], &buffers[#br], #x, &mut *#out, &mut *scratch);
                        });
                        train_body.extend(quote! {
                            ::nn_core::Layer::forward_train(
                                &#l, &params[#pr], &mut buffers[#br], #x, &mut *#out, &mut *#c, &mut *scratch, rng,
                            );
                        });
                    }
                    GraphLayer::Tied { target, inputs, outputs, .. } => {
                        let (wr, pr) = (weight_range(*target, *inputs, *outputs), p_range(*k));
                        forward_body.extend(quote! {
                            #l.forward(&params[#wr], &params[#pr], #x, &mut *#out, ::core::option::Option::None);
                        });
                        train_body.extend(quote! {
                            #l.forward(&params[#wr], &params[#pr], #x, &mut *#out, ::core::option::Option::Some(&mut *#c));
                        });
                    }
                }
            }
            NodeOp::Add | NodeOp::Multiply => {
                let f = if matches!(node.op, NodeOp::Add) { quote!(add) } else { quote!(multiply) };
                let call = quote!(::nn_core::graph::#f(&[#(#reads),*], &mut *#out););
                forward_body.extend(call.clone());
                train_body.extend(call);
            }
            NodeOp::Subtract => {
                let (a, b) = (&reads[0], &reads[1]);
                let call = quote!(::nn_core::graph::subtract(#a, #b, &mut *#out););
                forward_body.extend(call.clone());
                train_body.extend(call);
            }
            NodeOp::Concat(blocks) => {
                let blocks = blocks.iter().map(|b| Literal::usize_unsuffixed(*b));
                let call = quote!(::nn_core::graph::concat(&[#(#reads),*], &[#(#blocks),*], &mut *#out););
                forward_body.extend(call.clone());
                train_body.extend(call);
            }
        }
    }

    // The backward pass, statements in reverse. The first gradient written into a
    // value's buffer overwrites it, the others add into it.
    let mut written: Vec<bool> = (0..g.values.len()).map(|i| output_of(i).is_some()).collect();
    let mut backward_body = TokenStream::new();
    for (n, node) in g.nodes.iter().enumerate().rev() {
        let dy = gr(node.out);
        match &node.op {
            NodeOp::Apply(k) => {
                let u = node.args[0];
                let l = format_ident!("__NN_L{}", k);
                let c = cache_of(n);
                let (x, y) = (read(u), read(node.out));
                let len = vlen(u);
                let call = |dx: TokenStream| match &g.layers[*k] {
                    GraphLayer::Plain(_) => {
                        let pr = p_range(*k);
                        let p = format_ident!("__NN_P{}", k);
                        quote! {
                            ::nn_core::Layer::backward_frozen(
                                &#l, &params[#pr], #x, #y, &*#c, &mut *#dy, #dx, &mut grads[#pr], &mut *scratch,
                                frozen.shifted(#p),
                            );
                        }
                    }
                    GraphLayer::Tied { target, inputs, outputs, .. } => {
                        let wr = weight_range(*target, *inputs, *outputs);
                        let wp = format_ident!("__NN_P{}", target);
                        let wn = Literal::usize_unsuffixed(inputs * outputs);
                        let bp = format_ident!("__NN_P{}", k);
                        let bn = &sizes[*k].0;
                        quote! {
                            {
                                let (__dw, __db) = ::nn_core::graph::two_mut(grads, #wp, #wn, #bp, #bn);
                                #l.backward(&params[#wr], #x, #y, &*#c, &mut *#dy, #dx, __dw, __db);
                            }
                        }
                    }
                };
                let tmp = quote!(::core::option::Option::Some(&mut __tmp[..batch * #len]));
                let first = !written[u];
                written[u] = true;
                backward_body.extend(if g.values[u].input {
                    let dx = &dxs[input_of(u)];
                    if first {
                        call(quote!(#dx.as_deref_mut()))
                    } else {
                        let with = call(tmp);
                        let without = call(quote!(::core::option::Option::None));
                        quote! {
                            if let ::core::option::Option::Some(__d) = #dx.as_deref_mut() {
                                #with
                                ::nn_core::graph::accumulate(__d, &__tmp[..batch * #len]);
                            } else {
                                #without
                            }
                        }
                    }
                } else {
                    let gu = gr(u);
                    if first {
                        call(quote!(::core::option::Option::Some(&mut *#gu)))
                    } else {
                        let with = call(tmp);
                        quote! {
                            #with
                            ::nn_core::graph::accumulate(&mut *#gu, &__tmp[..batch * #len]);
                        }
                    }
                });
            }
            op => {
                let reads: Vec<TokenStream> = node.args.iter().map(|&a| read(a)).collect();
                for (j, &u) in node.args.iter().enumerate() {
                    let accumulate = written[u];
                    written[u] = true;
                    let contribution = |target: TokenStream| match op {
                        NodeOp::Add => quote!(::nn_core::graph::add_backward(&*#dy, #target, #accumulate);),
                        NodeOp::Subtract if j == 0 => {
                            quote!(::nn_core::graph::add_backward(&*#dy, #target, #accumulate);)
                        }
                        NodeOp::Subtract => quote!(::nn_core::graph::subtract_backward(&*#dy, #target, #accumulate);),
                        NodeOp::Multiply => {
                            quote!(::nn_core::graph::multiply_backward(&*#dy, &[#(#reads),*], #j, #target, #accumulate);)
                        }
                        NodeOp::Concat(blocks) => {
                            let blocks = blocks.iter().map(|b| Literal::usize_unsuffixed(*b));
                            quote!(::nn_core::graph::concat_backward(&*#dy, &[#(#blocks),*], #j, #target, #accumulate);)
                        }
                        NodeOp::Apply(_) => unreachable!(),
                    };
                    backward_body.extend(if g.values[u].input {
                        let c = contribution(quote!(__d));
                        let dx = &dxs[input_of(u)];
                        quote!(if let ::core::option::Option::Some(__d) = #dx.as_deref_mut() { #c })
                    } else {
                        let gu = gr(u);
                        contribution(quote!(&mut *#gu))
                    });
                }
            }
        }
    }
    let forward_values = bind_values(&format_ident!("scratch"), true);
    let train_values = bind_values(&format_ident!("cache"), true);
    let backward_values = bind_values(&format_ident!("cache"), false);
    let train_caches = bind_caches(true);
    let backward_caches = bind_caches(false);
    let mut grad_buffers = TokenStream::new();
    for &i in &internal {
        let (name, len) = (gr(i), vlen(i));
        grad_buffers.extend(quote!(let (#name, scratch) = scratch.split_at_mut(batch * #len);));
    }
    let dy_names: Vec<Ident> = g.outputs.iter().map(|&o| gr(o)).collect();

    let init_body: TokenStream = g
        .layers
        .iter()
        .enumerate()
        .map(|(k, layer)| {
            let l = format_ident!("__NN_L{}", k);
            let (pr, br) = (p_range(k), b_range(k));
            match layer {
                GraphLayer::Plain(_) => quote!(::nn_core::Layer::init(&#l, &mut params[#pr], &mut buffers[#br], rng);),
                GraphLayer::Tied { .. } => quote!(#l.init(&mut params[#pr]);),
            }
        })
        .collect();
    let visit_body: TokenStream = g
        .layers
        .iter()
        .enumerate()
        .map(|(k, layer)| {
            let l = format_ident!("__NN_L{}", k);
            let (p, b) = (format_ident!("__NN_P{}", k), format_ident!("__NN_B{}", k));
            match layer {
                GraphLayer::Plain(_) => {
                    quote!(::nn_core::Layer::visit_tensors(&#l, path, params_at + #p, buffers_at + #b, f);)
                }
                GraphLayer::Tied { name, .. } => {
                    let layer_name = unraw(name);
                    quote! {
                        let here = ::nn_core::TensorPath::new(path, #layer_name);
                        #l.visit_tensors(::core::option::Option::Some(&here), params_at + #p, f);
                    }
                }
            }
        })
        .collect();
    let summary_body: TokenStream = g
        .layers
        .iter()
        .enumerate()
        .map(|(k, layer)| {
            let l = format_ident!("__NN_L{}", k);
            match layer {
                GraphLayer::Plain(_) => quote!(::nn_core::Layer::visit_summary(&#l, "", depth, f);),
                GraphLayer::Tied { name, outputs, .. } => {
                    let layer_name = unraw(name);
                    let params = &sizes[k].0;
                    quote! {
                        f(&::nn_core::layer::SummaryRow {
                            name: #layer_name, kind: "TiedDense", depth, output: &[#outputs], params: #params,
                        });
                    }
                }
            }
        })
        .collect();
    let Checks { aliases, items } = checks;
    let batch = quote!(let batch = #x0.len() / <#in0 as ::nn_core::Shape>::LEN;);
    let backward_prologue = quote! {
        #batch
        #(let mut #dxs = #dxs;)*
        #backward_values
        #backward_caches
        #(let #dy_names: &mut [f32] = #dys;)*
        #grad_buffers
        let (__tmp, scratch) = scratch.split_at_mut(batch * ::nn_core::graph::max(&[#(#all_lens),*]));
    };
    let sizes_items = quote! {
        const __NN_PARAMS: usize = 0 #(+ #total_params)*;
        const __NN_BUFFERS: usize = 0 #(+ #total_buffers)*;
        const __NN_CACHE: usize = 0 #(+ #internal_lens)* #(+ #node_caches)*;
        const __NN_SCRATCH: usize = 0 #(+ #internal_lens)*
            + ::nn_core::graph::max(&[#(#all_lens),*])
            + ::nn_core::graph::max(&[#(#scratches),*]);
        // Inference keeps the values in the scratch and needs no gradient buffers.
        const __NN_FORWARD_SCRATCH: usize = 0 #(+ #internal_lens)*
            + ::nn_core::graph::max(&[#(#forward_scratches),*]);
    };
    // The items both forms of the expansion start with.
    let shared_items = quote! {
        #(#layer_items)*
        #(#offsets)*
        #(#value_lens)*
        #(#aliases)*
        #(#items)*
        #sizes_items
    };
    if multi {
        let (n_in, n_out) = (g.inputs.len(), g.outputs.len());
        let several_io = several_inputs_or_outputs(g);
        return quote! {
            #item
            const _: () = {
                #shared_items

                /// A graph network with several inputs or outputs: the methods of
                /// `nn_core::Layer`, over arrays of inputs and outputs (its `Layer`
                /// impl runs them on the concatenated samples).
                #[allow(unused_variables, unused_mut, clippy::all)]
                impl #name {
                    /// The number of trainable parameters.
                    pub const PARAMS: usize = __NN_PARAMS;
                    /// The number of non-trainable state values.
                    pub const BUFFERS: usize = __NN_BUFFERS;
                    /// Floats per sample that `forward_train` keeps for `backward`.
                    pub const CACHE: usize = __NN_CACHE;
                    /// Floats per sample of temporary space of every pass.
                    pub const SCRATCH: usize = __NN_SCRATCH;

                    /// Initialises the parameters and buffers.
                    pub fn init(&self, params: &mut [f32], buffers: &mut [f32], rng: &mut ::nn_core::Rng) {
                        #init_body
                    }

                    /// Inference over a batch: every input, every output, in declared order.
                    pub fn forward(
                        &self,
                        params: &[f32],
                        buffers: &[f32],
                        inputs: [&[f32]; #n_in],
                        outputs: [&mut [f32]; #n_out],
                        scratch: &mut [f32],
                    ) {
                        let [#(#xs),*] = inputs;
                        let [#(#ys),*] = outputs;
                        #batch
                        #forward_values
                        #forward_body
                    }

                    /// Training forward, keeping in `cache` what `backward` needs.
                    #[allow(clippy::too_many_arguments)]
                    pub fn forward_train(
                        &self,
                        params: &[f32],
                        buffers: &mut [f32],
                        inputs: [&[f32]; #n_in],
                        outputs: [&mut [f32]; #n_out],
                        cache: &mut [f32],
                        scratch: &mut [f32],
                        rng: &mut ::nn_core::Rng,
                    ) {
                        let [#(#xs),*] = inputs;
                        let [#(#ys),*] = outputs;
                        #batch
                        #train_values
                        #train_caches
                        #train_body
                    }

                    /// Backward: given the gradient of every output (overwritten), adds
                    /// the parameter gradients into `grads` and writes the gradient of
                    /// each input whose slot is given.
                    #[allow(clippy::too_many_arguments)]
                    pub fn backward(
                        &self,
                        params: &[f32],
                        inputs: [&[f32]; #n_in],
                        outputs: [&[f32]; #n_out],
                        cache: &[f32],
                        output_grads: [&mut [f32]; #n_out],
                        input_grads: [::core::option::Option<&mut [f32]>; #n_in],
                        grads: &mut [f32],
                        scratch: &mut [f32],
                    ) {
                        let [#(#xs),*] = inputs;
                        let [#(#ys),*] = outputs;
                        let [#(#dys),*] = output_grads;
                        let [#(#dxs),*] = input_grads;
                        let frozen = ::nn_core::layer::Frozen::NONE;
                        #backward_prologue
                        #backward_body
                    }

                    /// Calls `f` for every parameter and buffer tensor, in `state_dict` order.
                    pub fn visit_tensors(
                        &self,
                        path: ::core::option::Option<&::nn_core::TensorPath<'_>>,
                        params_at: usize,
                        buffers_at: usize,
                        f: &mut dyn FnMut(&::nn_core::TensorInfo<'_>),
                    ) {
                        #visit_body
                    }
                }

                #several_io
            };
        };
    }

    let network_impl = expand::network_impl(name, quote!(self));
    let tensors = expand::tensor_tree(tensors);
    let layer_impl = expand::layer_impl(
        net,
        expand::LayerImpl {
            consts: quote! {
                const PARAMS: usize = __NN_PARAMS;
                const BUFFERS: usize = __NN_BUFFERS;
                const CACHE: usize = __NN_CACHE;
                const SCRATCH: usize = __NN_SCRATCH;
                const FORWARD_SCRATCH: usize = __NN_FORWARD_SCRATCH;
                const TENSORS: &'static ::nn_core::weights::TensorTree = #tensors;
            },
            init: init_body,
            forward: quote!(#batch #forward_values #forward_body),
            forward_train: quote!(#batch #train_values #train_caches #train_body),
            backward: quote! {
                <Self as ::nn_core::Layer>::backward_frozen(
                    self, params, x, y, cache, dy, dx, grads, scratch, ::nn_core::layer::Frozen::NONE,
                )
            },
            backward_frozen: Some(quote!(#backward_prologue #backward_body)),
            visit_tensors: visit_body,
            visit_summary: Some(summary_body),
        },
    );
    quote! {
        #item
        const _: () = {
            #shared_items

            #layer_impl

            #network_impl
        };
    }
}

/// The items a network with several inputs or outputs gets besides its inherent
/// methods (`PARAMS`, `init`, `forward`, `forward_train`, `backward`,
/// `visit_tensors` over arrays of inputs and outputs, and the constants `__NN_PARAMS`,
/// `__NN_BUFFERS`, `__NN_CACHE`, `__NN_SCRATCH` in scope): the one place where impls
/// of traits for such networks are added (`multi_io`).
fn several_inputs_or_outputs(g: &Graph) -> TokenStream {
    crate::multi_io::expand(g)
}
