//! Encoder layers folded back into one statement.
//!
//! `torch.onnx` writes an `nn.TransformerEncoderLayer` as its parts, which the
//! conversion turns into a `MultiHeadAttention`, two residual `add`s, two `LayerNorm`s
//! and the feed-forward `SequenceDense` pair. Where those statements form exactly the
//! library's `TransformerEncoderLayer` (post-norm, PyTorch's default, or pre-norm,
//! `norm_first`) they become that one layer, and a chain of such layers named
//! `P.layers.0`, `P.layers.1`... (PyTorch's `nn.TransformerEncoder`) becomes one
//! `TransformerEncoder { layers: N }` named `P`. The tensors are renamed to the
//! layer's `state_dict` names. Anything else stays as its parts.
//!
//! The exported graph has no dropout (the model is exported for inference), so the
//! folded layers say `dropout: 0.0`: the network trains as the graph computes.
use std::collections::{HashMap, HashSet};

use crate::convert::{Converted, Stmt};

/// One encoder layer found among the statements.
struct Found {
    /// Indices of its seven statements.
    stmts: [usize; 7],
    /// The value it reads and the value it defines.
    input: String,
    output: String,
    /// The options after the kind name (`heads: 2, ff: 16`).
    options: String,
    /// Its parts' layer names: attention, linear1, linear2, norm1, norm2.
    parts: [String; 5],
}

/// The statements reading each value (graph outputs count as a reader at `usize::MAX`).
fn readers(net: &Converted) -> HashMap<&str, Vec<usize>> {
    let mut readers: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, stmt) in net.stmts.iter().enumerate() {
        for input in &stmt.inputs {
            readers.entry(input.as_str()).or_default().push(i);
        }
    }
    for (output, _) in &net.outputs {
        readers.entry(output.as_str()).or_default().push(usize::MAX);
    }
    readers
}

/// `heads` (and `, causal: true`) of a `MultiHeadAttention` kind.
fn attention_options(kind: &str) -> Option<String> {
    let inner = kind.strip_prefix("MultiHeadAttention { ")?.strip_suffix(" }")?;
    let heads = inner.strip_prefix("heads: ")?;
    match heads.split_once(", ") {
        None => Some(format!("heads: {heads}")),
        Some((heads, "causal: true")) => Some(format!("heads: {heads}, causal: true")),
        Some(_) => None,
    }
}

/// The epsilon option of a `LayerNorm` kind: `""` for the default, else `eps: 1e-6`.
fn norm_eps(kind: &str) -> Option<String> {
    if kind == "LayerNorm" {
        return Some(String::new());
    }
    let eps = kind.strip_prefix("LayerNorm { eps: ")?.strip_suffix(" }")?;
    Some(format!("eps: {eps}"))
}

/// `(units, activation)` of a `SequenceDense` kind with a bias.
fn sequence_dense(kind: &str) -> Option<(usize, Option<String>)> {
    let inner = kind.strip_prefix("SequenceDense { units: ")?.strip_suffix(" }")?;
    match inner.split_once(", ") {
        None => Some((inner.parse().ok()?, None)),
        Some((units, rest)) => {
            let activation = rest.strip_prefix("activation: ")?;
            if activation.contains(',') || activation.starts_with("Softmax") {
                return None;
            }
            Some((units.parse().ok()?, Some(activation.to_string())))
        }
    }
}

struct Matcher<'a> {
    net: &'a Converted,
    readers: HashMap<&'a str, Vec<usize>>,
    /// Where each value is defined.
    defs: HashMap<&'a str, usize>,
}

impl<'a> Matcher<'a> {
    /// The one statement reading `value`, if only one does.
    fn only_reader(&self, value: &str) -> Option<usize> {
        match self.readers.get(value).map(Vec::as_slice) {
            Some(&[i]) if i != usize::MAX => Some(i),
            _ => None,
        }
    }

    /// The readers of `value`, if they are exactly two statements.
    fn two_readers(&self, value: &str) -> Option<[usize; 2]> {
        match self.readers.get(value).map(Vec::as_slice) {
            Some(&[a, b]) if a != usize::MAX && b != usize::MAX => Some([a, b]),
            _ => None,
        }
    }

    fn stmt(&self, i: usize) -> &'a Stmt {
        &self.net.stmts[i]
    }

    /// Whether statement `i` is an `add` of `a` and `b` (either order).
    fn is_add(&self, i: usize, a: &str, b: &str) -> bool {
        let s = self.stmt(i);
        s.layer.is_none()
            && s.kind == "add"
            && s.merge_args.is_none()
            && s.inputs.len() == 2
            && ((s.inputs[0] == a && s.inputs[1] == b) || (s.inputs[0] == b && s.inputs[1] == a))
    }

    /// Whether statement `i` is a layer reading only `input`.
    fn reads(&self, i: usize, input: &str) -> bool {
        let s = self.stmt(i);
        s.layer.is_some() && s.inputs.len() == 1 && s.inputs[0] == input
    }

    /// The feed-forward pair from the statement `first` on, reading `input`, back to
    /// width `width`: `(linear1, linear2, ff, activation)`.
    fn feed_forward(&self, first: usize, input: &str, width: usize) -> Option<(usize, usize, usize, String)> {
        if !self.reads(first, input) {
            return None;
        }
        let (ff, activation) = sequence_dense(&self.stmt(first).kind)?;
        let second = self.only_reader(&self.stmt(first).out)?;
        let (units, none) = sequence_dense(&self.stmt(second).kind)?;
        if !self.reads(second, &self.stmt(first).out) || units != width || none.is_some() {
            return None;
        }
        Some((first, second, ff, activation?))
    }

    /// The encoder layer whose attention is statement `a`, post-norm or pre-norm.
    fn encoder_at(&self, a: usize) -> Option<Found> {
        let attn = self.stmt(a);
        let heads = attention_options(&attn.kind)?;
        let width = *attn.shape.last()?;
        let add1 = self.only_reader(&attn.out)?;
        let (norm_first, input, n1) = {
            let attn_in = attn.inputs.first()?;
            let def = self.defs.get(attn_in.as_str()).copied();
            // Pre-norm: the attention reads `norm1(x)`, read by nothing else, and
            // `add1` adds `x`.
            match def {
                Some(n)
                    if norm_eps(&self.stmt(n).kind).is_some()
                        && self.only_reader(attn_in) == Some(a)
                        && self.is_add(add1, &self.stmt(n).inputs[0], &attn.out) =>
                {
                    (true, self.stmt(n).inputs[0].clone(), n)
                }
                _ => {
                    if !self.is_add(add1, attn_in, &attn.out) {
                        return None;
                    }
                    let n1 = self.only_reader(&self.stmt(add1).out)?;
                    (false, attn_in.clone(), n1)
                }
            }
        };
        let s1 = self.stmt(add1).out.as_str();
        let eps = norm_eps(&self.stmt(n1).kind)?;
        let (n2, l1, l2, ff, activation, add2, output);
        if norm_first {
            // h = x + sa(norm1(x)); y = h + ff(norm2(h)).
            let [r0, r1] = self.two_readers(s1)?;
            let (norm, add) =
                if self.reads(r0, s1) && self.stmt(r0).kind.starts_with("LayerNorm") { (r0, r1) } else { (r1, r0) };
            n2 = norm;
            if !self.reads(n2, s1) || norm_eps(&self.stmt(n2).kind)? != eps {
                return None;
            }
            (l1, l2, ff, activation) =
                self.feed_forward(self.only_reader(&self.stmt(n2).out)?, &self.stmt(n2).out, width)?;
            add2 = add;
            if !self.is_add(add2, s1, &self.stmt(l2).out) {
                return None;
            }
            output = self.stmt(add2).out.clone();
        } else {
            // h = norm1(x + sa(x)); y = norm2(h + ff(h)).
            if !self.reads(n1, s1) {
                return None;
            }
            let h = self.stmt(n1).out.as_str();
            let [r0, r1] = self.two_readers(h)?;
            let (first, add) = if self.stmt(r0).layer.is_some() { (r0, r1) } else { (r1, r0) };
            (l1, l2, ff, activation) = self.feed_forward(first, h, width)?;
            add2 = add;
            if !self.is_add(add2, h, &self.stmt(l2).out) {
                return None;
            }
            n2 = self.only_reader(&self.stmt(add2).out)?;
            if !self.reads(n2, &self.stmt(add2).out) || norm_eps(&self.stmt(n2).kind)? != eps {
                return None;
            }
            output = self.stmt(n2).out.clone();
        }
        let mut options = vec![heads, format!("ff: {ff}")];
        if norm_first {
            options.push(String::from("norm_first: true"));
        }
        if activation != "Relu" {
            options.push(format!("activation: {activation}"));
        }
        options.push(String::from("dropout: 0.0"));
        if !eps.is_empty() {
            options.push(eps);
        }
        let name = |i: usize| self.stmt(i).layer.clone().unwrap_or_default();
        Some(Found {
            stmts: [a, add1, n1, l1, l2, add2, n2],
            input,
            output,
            options: options.join(", "),
            parts: [name(a), name(l1), name(l2), name(n1), name(n2)],
        })
    }
}

/// The name of the folded layer: the attention's name without `_self_attn`
/// (`encoder_layers_0`) when that is free, else the attention's own.
fn layer_name(attention: &str, taken: &HashSet<String>) -> String {
    match attention.strip_suffix("_self_attn") {
        Some(stem) if !stem.is_empty() && !taken.contains(stem) => stem.to_string(),
        _ => attention.to_string(),
    }
}

/// Renames the tensors `{old}.rest` to `{new}.rest`.
fn rename(net: &mut Converted, old: &str, new: &str) {
    let prefix = format!("{old}.");
    for t in &mut net.tensors {
        if let Some(rest) = t.name.strip_prefix(&prefix) {
            t.name = format!("{new}.{rest}");
        }
    }
}

/// Renames the value `old` to `new` wherever it is read or is an output.
fn rename_value(net: &mut Converted, old: &str, new: &str) {
    for stmt in &mut net.stmts {
        for input in &mut stmt.inputs {
            if input == old {
                *input = new.to_string();
            }
        }
    }
    for (output, _) in &mut net.outputs {
        if output == old {
            *output = new.to_string();
        }
    }
}

/// Every name of the network (values and layers), but those of `except`.
fn names_taken(net: &Converted, except: &[usize]) -> HashSet<String> {
    let mut taken: HashSet<String> = net.inputs.iter().map(|(v, _)| v.clone()).collect();
    for (i, stmt) in net.stmts.iter().enumerate() {
        if !except.contains(&i) {
            taken.insert(stmt.out.clone());
            taken.extend(stmt.layer.clone());
        }
    }
    taken
}

/// Folds every encoder layer, then every chain of them into a `TransformerEncoder`.
pub(crate) fn fold(net: &mut Converted) {
    while let Some(found) = next_layer(net) {
        let taken = names_taken(net, &found.stmts);
        let layer = layer_name(&found.parts[0], &taken);
        let [attn, linear1, linear2, norm1, norm2] = &found.parts;
        for (part, scope) in
            [(attn, "self_attn"), (linear1, "linear1"), (linear2, "linear2"), (norm1, "norm1"), (norm2, "norm2")]
        {
            rename(net, part, &format!("{layer}.{scope}"));
        }
        let last = *found.stmts.iter().max().unwrap_or(&0);
        let shape = net.stmts[last].shape.clone();
        let stmt = Stmt {
            out: layer.clone(),
            layer: Some(layer.clone()),
            kind: format!("TransformerEncoderLayer {{ {} }}", found.options),
            merge_args: None,
            inputs: vec![found.input.clone()],
            shape,
        };
        net.stmts[last] = stmt;
        let mut drop: Vec<usize> = found.stmts.iter().copied().filter(|&i| i != last).collect();
        drop.sort_unstable();
        for i in drop.into_iter().rev() {
            net.stmts.remove(i);
        }
        rename_value(net, &found.output, &layer);
        // The renamed statement itself reads `found.input`, not its old output.
    }
    while stack(net) {}
}

fn next_layer(net: &Converted) -> Option<Found> {
    let mut defs = HashMap::new();
    for (i, stmt) in net.stmts.iter().enumerate() {
        defs.insert(stmt.out.as_str(), i);
    }
    let m = Matcher { net, readers: readers(net), defs };
    (0..net.stmts.len()).filter(|&i| net.stmts[i].kind.starts_with("MultiHeadAttention")).find_map(|i| m.encoder_at(i))
}

/// Folds one chain `P_layers_0`, `P_layers_1`, ... of equal `TransformerEncoderLayer`s,
/// each read only by the next, into `P: TransformerEncoder { layers: N }`; whether it
/// found one.
fn stack(net: &mut Converted) -> bool {
    let r = readers(net);
    for start in 0..net.stmts.len() {
        let first = &net.stmts[start];
        let Some(options) = first.kind.strip_prefix("TransformerEncoderLayer { ").and_then(|k| k.strip_suffix(" }"))
        else {
            continue;
        };
        let Some(stem) = first.layer.as_deref().and_then(|l| l.strip_suffix("_layers_0")) else { continue };
        if stem.is_empty() {
            continue;
        }
        let mut chain = vec![start];
        loop {
            let last = &net.stmts[*chain.last().unwrap_or(&start)];
            let next = match r.get(last.out.as_str()).map(Vec::as_slice) {
                Some(&[i]) if i != usize::MAX => i,
                _ => break,
            };
            let s = &net.stmts[next];
            let expected = format!("{stem}_layers_{}", chain.len());
            if s.kind != first.kind || s.layer.as_deref() != Some(expected.as_str()) || s.inputs != [last.out.clone()] {
                break;
            }
            chain.push(next);
        }
        if chain.len() < 2 {
            continue;
        }
        let taken = names_taken(net, &chain);
        if taken.contains(stem) {
            continue;
        }
        let (stem, options) = (stem.to_string(), options.to_string());
        for (i, &s) in chain.iter().enumerate() {
            let old = net.stmts[s].layer.clone().unwrap_or_default();
            rename(net, &old, &format!("{stem}.layers.{i}"));
        }
        let last = *chain.last().unwrap_or(&start);
        let old_out = net.stmts[last].out.clone();
        let stmt = Stmt {
            out: stem.clone(),
            layer: Some(stem.clone()),
            kind: format!("TransformerEncoder {{ {options}, layers: {} }}", chain.len()),
            merge_args: None,
            inputs: net.stmts[start].inputs.clone(),
            shape: net.stmts[last].shape.clone(),
        };
        net.stmts[last] = stmt;
        for &i in chain[..chain.len() - 1].iter().rev() {
            net.stmts.remove(i);
        }
        rename_value(net, &old_out, &stem);
        return true;
    }
    false
}
