//! Phase 2 of the graph form: its statements to the `ir::Graph`, resolving values,
//! layers and shapes in statement order. What building the graph needs is reported
//! here, as with the sequential form's kinds and shapes: a value used before it is
//! defined, a cycle, a value defined twice, a merge of mismatched shapes. The checks
//! of the finished graph (declared outputs, missing statements, unused values) are
//! `validate`'s.
use quote::quote;
use syn::{token, Ident, LitInt};

use crate::errors::Errors;
use crate::expand;
use crate::ir::{
    self, shape_type, unraw, DeclaredShape, Graph, GraphLayer, Node, NodeOp, Op, ShapeInfo, Source, Statements,
    ValueInfo,
};
use crate::parse::{LayerDef, NetworkDef, OptionDef, OptionsDef, ShapeDef, Value};
use crate::parse_graph::{self, Call, GraphDef, Stmt};
use crate::rnn_kinds;
use crate::suggest;

/// Lowers a graph network, with what its statements tell `validate`.
pub(crate) fn lower(def: &NetworkDef, graph: &GraphDef, errors: &mut Errors) -> (Graph, Statements) {
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
        state_checks: Vec::new(),
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
    let mut output_names: Vec<Ident> = Vec::new();
    let mut output_slots = Vec::new();
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
                    output_names.push(name.clone());
                    output_slots.push(k);
                    g.outputs.push(v);
                }
            }
            Stmt::Assign { value, call, assertion, states, tuple } => {
                let nodes_before = g.nodes.len();
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
                if parse_graph::is_discard(value) {
                    g.values[v].uses += 1;
                }
                if let Some(tuple) = tuple {
                    let applied = (g.nodes.len() > nodes_before).then(|| g.nodes.len() - 1);
                    final_state(&mut g, call, applied, states, *tuple, errors);
                }
            }
        }
    }
    // After a name that did not resolve, an "unused" value may be the one it meant.
    let unresolved = stmts.iter().enumerate().any(|(i, s)| match s {
        Stmt::Assign { call, .. } => call.args().iter().any(|a| !defined_before(&stmts, i, a)),
        Stmt::Output { names, .. } => names.iter().any(|a| !defined_before(&stmts, i, a)),
        Stmt::Input { .. } => false,
    });
    let quiet = unresolved || recovering || counts_wrong || !saw_input || !saw_output;
    let _ = graph.keyword;
    let statements = Statements {
        body: graph.body,
        saw_input,
        saw_output,
        output_names,
        output_slots,
        output_spans,
        quiet,
        recovering,
    };
    (g, statements)
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
                g.nodes.push(Node { op: NodeOp::Concat(blocks), args, out: usize::MAX, states: Vec::new() });
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
            g.nodes.push(Node { op, args, out: usize::MAX, states: Vec::new() });
            first
        }
        Call::Layer { layer, args: arg_names, decl, tied, .. } => {
            if args.is_empty() || (args.len() > 1 && tied.is_some()) {
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
                    if !initial_state(g, l, call, arg_names, &args, errors) {
                        return ShapeInfo::Unknown;
                    }
                    g.nodes.push(Node { op: NodeOp::Apply(l), args, out: usize::MAX, states: Vec::new() });
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
                    if !initial_state(g, g.layers.len() - 1, call, arg_names, &args, errors) {
                        return ShapeInfo::Unknown;
                    }
                    g.nodes.push(Node {
                        op: NodeOp::Apply(g.layers.len() - 1),
                        args,
                        out: usize::MAX,
                        states: Vec::new(),
                    });
                    output
                }
            }
        }
    }
}

/// Checks the values after the first of a call of layer `layer`: none, or the initial
/// state of a recurrent layer (`gru(x, h0)`, `lstm(x, h0, c0)`), each `[layers *
/// directions, units]` per sample (or `[units]` for one layer in one direction).
/// Returns whether they fit (a mismatch is reported).
fn initial_state(
    g: &mut Graph,
    layer: usize,
    call: &Call,
    names: &[Ident],
    args: &[usize],
    errors: &mut Errors,
) -> bool {
    if args.len() == 1 {
        return true;
    }
    let name = unraw(g.layers[layer].name());
    let state = match &g.layers[layer] {
        GraphLayer::Plain(p) => rnn_kinds::initial_state(p),
        GraphLayer::Tied { .. } => None,
    };
    let Some(state) = state else {
        errors.at(
            call.span(),
            format!(
                "a layer takes one value, but `{name}` is given {}; only a recurrent layer (`SimpleRnn`, `Lstm`, \
                 `Gru`) takes more, its initial state, as in `gru(x, h0)` or `lstm(x, h0, c0)`",
                args.len()
            ),
        );
        return false;
    };
    if args.len() - 1 != state.values {
        let what = if state.values == 2 { "two values, `h0` and `c0`" } else { "one value, `h0`" };
        errors.at(
            call.span(),
            format!("`{name}` is given {} values; its initial state is {what}, as in `{}`", args.len(), state.example),
        );
        return false;
    }
    let mut fits = true;
    for (arg_name, &v) in names.iter().zip(args).skip(1) {
        let given = g.values[v].shape.clone();
        match (&given, &state.shape) {
            (ShapeInfo::Known(a), ShapeInfo::Known(b)) => {
                if a != b && !(b[0] == 1 && *a == b[1..]) {
                    errors.spanned(
                        arg_name,
                        format!(
                            "the initial state of `{name}` is {} per sample (layers x directions, units), but `{}` is \
                             {}",
                            suggest::dims(b),
                            unraw(arg_name),
                            suggest::dims(a)
                        ),
                    );
                    fits = false;
                }
            }
            (ShapeInfo::Unknown, _) | (_, ShapeInfo::Unknown) => {}
            _ => g.state_checks.push((
                arg_name.span(),
                given.ty(),
                state.shape.ty(),
                format!(
                    "shape mismatch: the initial state of `{}` is `{{Expected}}`, but `{}` is `{{Self}}`",
                    expand::escape(&name),
                    expand::escape(&unraw(arg_name))
                ),
                format!("`{}` starts from `{{Expected}}`", expand::escape(&name)),
            )),
        }
    }
    fits
}

/// Defines the values `names` of `(y, h) = gru(x)` or `(y, h, c) = lstm(x)` (`tuple`
/// spanning the names), the final state of the layer applied by node `applied` (`None`
/// if the call did not lower, already reported): `h_n` (and `c_n`), `[layers *
/// directions, units]` per sample, `[units]` for one layer in one direction. A call
/// that is not of a recurrent layer, or a count of names that does not fit it, is
/// reported, the names then defined with unknown shapes.
fn final_state(
    g: &mut Graph,
    call: &Call,
    applied: Option<usize>,
    names: &[Ident],
    tuple: proc_macro2::Span,
    errors: &mut Errors,
) {
    let layer = match (call, applied.map(|n| &g.nodes[n].op)) {
        (Call::Layer { .. }, Some(NodeOp::Apply(k))) => Some(*k),
        _ => None,
    };
    let state = match layer.map(|k| &g.layers[k]) {
        Some(GraphLayer::Plain(p)) => rnn_kinds::final_state(p),
        _ => None,
    };
    let shape = match (&state, call) {
        (Some(state), _) => match rnn_kinds::check_final_state(state, names, tuple) {
            Ok(()) => state.shape.clone(),
            Err((span, message)) => {
                errors.at(span, message);
                ShapeInfo::Unknown
            }
        },
        (None, Call::Layer { .. }) if applied.is_none() => ShapeInfo::Unknown,
        (None, _) => {
            let what = match (call, layer.map(|k| &g.layers[k])) {
                (Call::Merge { op, .. }, _) => format!("`{op}` is a merge"),
                (_, Some(GraphLayer::Plain(ir::Layer { kind, name, .. }))) => {
                    format!("`{}` is a `{}` layer", unraw(name), unraw(&kind.segments.last().expect("a path").ident))
                }
                (_, Some(GraphLayer::Tied { name, .. })) => format!("`{}` is a tied `Dense` layer", unraw(name)),
                (_, None) => String::from("this is not a layer call"),
            };
            errors.at(
                tuple,
                format!(
                    "{what}, which gives one value; only a recurrent layer (`SimpleRnn`, `Gru`, `Lstm`) also returns \
                     its final state, as in `(y, h) = gru(x)` or `(y, h, c) = lstm(x)`"
                ),
            );
            ShapeInfo::Unknown
        }
    };
    let known = !matches!(shape, ShapeInfo::Unknown);
    let mut values = Vec::new();
    for name in names {
        let v = define(g, name, shape.clone(), false, errors);
        if parse_graph::is_discard(name) || !known {
            g.values[v].uses += 1;
        }
        values.push(v);
    }
    if let (Some(n), true) = (applied, known) {
        g.nodes[n].states = values;
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
    g.nodes.push(Node { op: NodeOp::Apply(g.layers.len() - 1), args, out: usize::MAX, states: Vec::new() });
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
