//! The multi-head self-attention that `torch.onnx.export` writes for
//! `nn.MultiheadAttention` and `nn.TransformerEncoderLayer`, as one
//! `MultiHeadAttention` layer.
//!
//! The exporter (torch 2.15's default, `dynamo=True`) writes the attention as some
//! thirty nodes: the input projection (`MatMul` by the transposed `in_proj_weight`,
//! `Add` of `in_proj_bias`), reshapes, transposes and `Gather`s that split it into
//! the heads' queries, keys and values, the scaled product and `Softmax`, the product
//! with the values, reshapes back, and the output projection (`Gemm` or `MatMul` and
//! `Add` by `out_proj`). Their exact sequence differs between exporters and versions,
//! so the pattern is matched by its data flow, not node by node:
//!
//! 1. the input projection: a `MatMul` by a constant `[D, 3D]` (or a `Gemm` by a
//!    constant `[3D, D]` with `transB = 1`), its bias `Add`;
//! 2. the nodes reading it, up to a `MatMul`/`Gemm` by a constant `[D, D]` (the output
//!    projection): only reshaping, selecting and multiplying operators, one `Softmax`
//!    and two products of computed values, none read from outside;
//! 3. the output projection's bias and the reshapes and transposes after it.
//!
//! The nodes are then run by a small evaluator (`crate::eval`) on a test input, and
//! the result must equal the library's attention with the weights read from the
//! projections for one number of heads `H` (causal or not). A pattern that matches
//! structurally but computes something else (another scale, a mask the library does
//! not have) is one unsupported entry naming its first node and why.
use std::collections::{HashMap, HashSet};

use crate::eval::{self, Value};
use crate::layout::elements;
use crate::onnx::{Constant, Graph, Node};

/// A recognised attention.
#[derive(Clone, Debug)]
pub(crate) struct Matched {
    /// The indices of every node it replaces.
    pub nodes: Vec<usize>,
    /// The ONNX value it computes.
    pub output: String,
    /// The output's shape and the index of its batch axis.
    pub output_shape: Vec<usize>,
    pub output_batch: usize,
    pub heads: usize,
    pub causal: bool,
    /// `in_proj_weight [3D, D]`, `in_proj_bias [3D]`, `out_proj.weight [D, D]`,
    /// `out_proj.bias [D]`, as PyTorch's `state_dict`.
    pub in_weight: Vec<f32>,
    pub in_bias: Vec<f32>,
    pub out_weight: Vec<f32>,
    pub out_bias: Vec<f32>,
    /// A name for the layer (`encoder.layers.0.self_attn` from its bias's name).
    pub name: String,
}

/// A pattern that looks like an attention but is not the library's.
#[derive(Clone, Debug)]
pub(crate) struct Failed {
    /// The indices of its nodes.
    pub nodes: Vec<usize>,
    /// The ONNX value it computes.
    pub output: String,
    pub reason: String,
}

/// The largest number of nodes one attention pattern may span.
const MAX_NODES: usize = 200;

/// Operators that may appear between the input and output projections.
const INSIDE: &[&str] = &[
    "Reshape",
    "Transpose",
    "Squeeze",
    "Unsqueeze",
    "Gather",
    "Slice",
    "Split",
    "Mul",
    "Div",
    "Add",
    "Sub",
    "Sqrt",
    "MatMul",
    "Softmax",
    "Identity",
    "Dropout",
];

/// The matrix `[rows, cols]` of a constant, transposed when `transpose`.
fn matrix(c: &Constant, transpose: bool) -> Vec<f32> {
    let v = c.floats();
    if !transpose {
        return v;
    }
    let (rows, cols) = (c.shape[0], c.shape[1]);
    let mut t = vec![0.0; v.len()];
    for r in 0..rows {
        for k in 0..cols {
            t[k * rows + r] = v[r * cols + k];
        }
    }
    t
}

/// A projection node: a `MatMul` by a constant `[inputs, outputs]`, or a `Gemm` by
/// a constant `[outputs, inputs]` with `transB = 1` (or `[inputs, outputs]`), with
/// its bias (the `Gemm`'s third input, or a following `Add` of a constant). Returns
/// the weight as `[outputs, inputs]`, the bias, the bias's name, the nodes and the
/// value computed.
struct Projection {
    weight: Vec<f32>,
    outputs: usize,
    inputs: usize,
    bias: Option<(Vec<f32>, String)>,
    nodes: Vec<usize>,
    output: String,
}

fn projection(graph: &Graph, index: usize, readers: &HashMap<String, Vec<usize>>) -> Option<Projection> {
    let node = &graph.nodes[index];
    let w = graph.constants.get(node.input(1)?)?;
    let [a, b] = w.shape[..] else { return None };
    let (weight, outputs, inputs, mut bias) = match node.op.as_str() {
        "MatMul" => (matrix(w, true), b, a, None),
        "Gemm" if node.int("transA", 0) == 0 && node.float("alpha", 1.0) == 1.0 && node.float("beta", 1.0) == 1.0 => {
            let bias = match node.input(2) {
                Some(name) => Some((graph.constants.get(name)?.floats(), name.to_string())),
                None => None,
            };
            if node.int("transB", 0) != 0 {
                (w.floats(), a, b, bias)
            } else {
                (matrix(w, true), b, a, bias)
            }
        }
        _ => return None,
    };
    let mut output = node.outputs.first()?.clone();
    let mut nodes = vec![index];
    if bias.is_none() {
        if let Some(&[add]) = readers.get(&output).map(Vec::as_slice) {
            let n = &graph.nodes[add];
            let other = n.inputs.iter().find(|i| **i != output);
            if let Some((c, name)) = other.and_then(|o| graph.constants.get(o).map(|c| (c, o))) {
                if n.op == "Add" && n.inputs.len() == 2 && c.shape.last() == Some(&outputs) && c.shape.len() == 1 {
                    bias = Some((c.floats(), name.clone()));
                    nodes.push(add);
                    output = n.outputs.first()?.clone();
                }
            }
        }
    }
    if bias.as_ref().is_some_and(|(b, _)| b.len() != outputs) {
        return None;
    }
    Some(Projection { weight, outputs, inputs, bias, nodes, output })
}

/// The attention starting at node `start` (its input projection) reading `x` of
/// ONNX shape `x_shape` with the batch on axis `x_batch`: `None` if `start` is not
/// the input projection of such a pattern, or `Err` with why the pattern found is
/// not the library's attention.
pub(crate) fn find(graph: &Graph, start: usize, x_shape: &[usize], x_batch: usize) -> Option<Result<Matched, Failed>> {
    let mut readers: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, n) in graph.nodes.iter().enumerate() {
        for input in n.inputs.iter().filter(|s| !s.is_empty()) {
            readers.entry(input.clone()).or_default().push(i);
        }
    }
    let graph_outputs: HashSet<&str> = graph.outputs.iter().map(|o| o.name.as_str()).collect();
    let input_proj = projection(graph, start, &readers)?;
    let d = input_proj.inputs;
    if input_proj.outputs != 3 * d || x_shape.len() != 3 || x_shape[2] != d || x_batch > 1 {
        return None;
    }
    // The nodes reading the projection, up to the output projection.
    let mut region: Vec<usize> = input_proj.nodes.clone();
    let mut inside: HashSet<String> = HashSet::from([input_proj.output.clone()]);
    let mut frontier = vec![input_proj.output.clone()];
    let mut out_proj: Option<Projection> = None;
    let mut softmaxes = 0;
    while let Some(value) = frontier.pop() {
        for &r in readers.get(&value).map(Vec::as_slice).unwrap_or_default() {
            if region.contains(&r) || out_proj.as_ref().is_some_and(|p| p.nodes.contains(&r)) {
                continue;
            }
            let n = &graph.nodes[r];
            if let Some(p) = projection(graph, r, &readers).filter(|p| p.inputs == d && p.outputs == d) {
                if out_proj.is_some() {
                    // Two `[D, D]` projections: not one attention.
                    return None;
                }
                out_proj = Some(p);
                continue;
            }
            if !INSIDE.contains(&n.op.as_str()) || !n.domain.is_empty() {
                // A value of the projections is read by something else: not (only) an
                // attention; leave the nodes to the ordinary conversion.
                return None;
            }
            if n.op == "Softmax" {
                softmaxes += 1;
            }
            region.push(r);
            if region.len() > MAX_NODES {
                return None;
            }
            for o in n.outputs.iter().filter(|o| !o.is_empty()) {
                if graph_outputs.contains(o.as_str()) {
                    return None;
                }
                inside.insert(o.clone());
                frontier.push(o.clone());
            }
        }
    }
    let out_proj = out_proj?;
    if softmaxes != 1 {
        return None;
    }
    // Every computed input of the region is its own or the projection's.
    for &r in &region[input_proj.nodes.len()..] {
        for i in graph.nodes[r].inputs.iter().filter(|i| !i.is_empty()) {
            if !inside.contains(i) && !graph.constants.contains_key(i) {
                // A mask or another value from outside: left to the ordinary conversion.
                return None;
            }
        }
    }
    let out_node = &graph.nodes[out_proj.nodes[0]];
    let attended = out_node.input(0)?.to_string();
    if !inside.contains(&attended) {
        return None;
    }
    region.retain(|r| !input_proj.nodes.contains(r));
    region.sort_unstable();
    // The reshapes and transposes after the output projection.
    let mut tail = Vec::new();
    let mut last = out_proj.output.clone();
    while let Some(&[r]) = readers.get(&last).map(Vec::as_slice) {
        let n = &graph.nodes[r];
        let reshapes = ["Reshape", "Transpose", "Squeeze", "Unsqueeze"].contains(&n.op.as_str());
        if !reshapes || graph_outputs.contains(last.as_str()) {
            break;
        }
        tail.push(r);
        last = n.outputs.first()?.clone();
    }
    // Every value inside is read only inside (or by the output projection).
    let mut members: HashSet<usize> = input_proj.nodes.iter().chain(&region).chain(&out_proj.nodes).copied().collect();
    for value in &inside {
        if readers.get(value).is_some_and(|rs| rs.iter().any(|r| !members.contains(r))) {
            return None;
        }
    }
    let checked = verify(graph, x_shape, x_batch, &input_proj, &region, &out_proj, &tail);
    let nodes = |members: &HashSet<usize>, tail: &[usize]| {
        let mut nodes: Vec<usize> = members.iter().chain(tail).copied().collect();
        nodes.sort_unstable();
        nodes
    };
    let found = match checked {
        Ok(found) => found,
        Err(reason) => {
            let output = tail.last().map_or(out_proj.output.clone(), |&t| graph.nodes[t].outputs[0].clone());
            return Some(Err(Failed { nodes: nodes(&members, &tail), output, reason }));
        }
    };
    members.extend(&tail[..found.tail]);
    let name = input_proj
        .bias
        .as_ref()
        .and_then(|(_, n)| n.strip_suffix(".in_proj_bias"))
        .map(str::to_string)
        .unwrap_or_else(|| graph.nodes[start].name.clone());
    Some(Ok(Matched {
        nodes: nodes(&members, &[]),
        output: found.output,
        output_shape: found.shape,
        output_batch: found.batch,
        heads: found.heads,
        causal: found.causal,
        in_bias: input_proj.bias.map(|(b, _)| b).unwrap_or_else(|| vec![0.0; 3 * d]),
        in_weight: input_proj.weight,
        out_bias: out_proj.bias.map(|(b, _)| b).unwrap_or_else(|| vec![0.0; d]),
        out_weight: out_proj.weight,
        name,
    }))
}

/// What [`verify`] found.
struct Found {
    heads: usize,
    causal: bool,
    /// How many nodes of the tail belong to the attention, the value they compute,
    /// its shape and its batch axis.
    tail: usize,
    output: String,
    shape: Vec<usize>,
    batch: usize,
}

/// Runs the pattern on a test input and finds the heads (and causal mask) with which
/// the library's attention gives the same values.
#[allow(clippy::too_many_arguments)]
fn verify(
    graph: &Graph,
    x_shape: &[usize],
    x_batch: usize,
    input_proj: &Projection,
    region: &[usize],
    out_proj: &Projection,
    tail: &[usize],
) -> Result<Found, String> {
    let d = input_proj.inputs;
    let (batch, steps) = (x_shape[x_batch], x_shape[1 - x_batch]);
    // A test input in [-2, 2], the same on every run.
    let mut state = 0x2545_f491_u32;
    let data: Vec<f32> = (0..elements(x_shape))
        .map(|_| {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (state >> 8) as f32 / (1u32 << 24) as f32 * 4.0 - 2.0
        })
        .collect();
    let sample = |b: usize| -> Vec<f32> {
        let mut s = Vec::with_capacity(steps * d);
        for t in 0..steps {
            let at = if x_batch == 0 { b * steps + t } else { t * batch + b };
            s.extend_from_slice(&data[at * d..(at + 1) * d]);
        }
        s
    };
    // The input projection, as the library computes it, then the graph's nodes.
    let projected = project(&data, elements(x_shape) / d, d, 3 * d, &input_proj.weight, input_proj.bias.as_ref());
    let mut p_shape = x_shape.to_vec();
    p_shape[2] = 3 * d;
    let mut values = HashMap::new();
    values.insert(input_proj.output.clone(), Value { shape: p_shape, data: projected });
    let nodes: Vec<&Node> = region.iter().chain(&out_proj.nodes[..1]).map(|&i| &graph.nodes[i]).collect();
    let values = eval::run(&nodes, &graph.constants, values)?;
    let attended = values.get(&out_proj.nodes.first().map(|&i| graph.nodes[i].outputs[0].clone()).unwrap_or_default());
    let attended = attended.ok_or("its output projection computed nothing")?;
    let rows = elements(&attended.shape) / d.max(1);
    // The output projection's bias, then the tail.
    let mut y = attended.data.clone();
    if out_proj.nodes.len() == 2 {
        if let Some((b, _)) = &out_proj.bias {
            y.chunks_mut(d).for_each(|row| row.iter_mut().zip(b).for_each(|(v, b)| *v += b));
        }
    }
    let mut tail_values = HashMap::new();
    tail_values.insert(out_proj.output.clone(), Value { shape: attended.shape.clone(), data: y });
    let tail_nodes: Vec<&Node> = tail.iter().map(|&i| &graph.nodes[i]).collect();
    let tail_values = eval::run(&tail_nodes, &graph.constants, tail_values)?;
    // The longest part of the tail whose result is the input's shape, `[B, T, D]` or
    // `[T, B, D]` (a `Flatten` after the attention is not part of it).
    let found = (0..=tail.len()).rev().find_map(|k| {
        let name = if k == 0 { out_proj.output.clone() } else { graph.nodes[tail[k - 1]].outputs[0].clone() };
        let value = tail_values.get(&name)?;
        let batch_at = match value.shape[..] {
            [b, t, w] if b == batch && t == steps && w == d && (x_batch == 0 || steps != batch) => 0,
            [t, b, w] if b == batch && t == steps && w == d => 1,
            _ => return None,
        };
        Some((k, name, value, batch_at))
    });
    let Some((tail_len, output, result, output_batch)) = found else {
        return Err(format!(
            "its result {:?} is not the input's {x_shape:?} with {rows} rows of width {d}",
            attended.shape
        ));
    };
    let got = |b: usize| -> Vec<f32> {
        let mut s = Vec::with_capacity(steps * d);
        for t in 0..steps {
            let at = if output_batch == 0 { b * steps + t } else { t * batch + b };
            s.extend_from_slice(&result.data[at * d..(at + 1) * d]);
        }
        s
    };
    for causal in [false, true] {
        for heads in (1..=d).filter(|h| d.is_multiple_of(*h)) {
            let same = (0..batch).all(|b| {
                let expected = reference(&sample(b), steps, d, heads, causal, input_proj, out_proj);
                got(b).iter().zip(&expected).all(|(a, e)| (a - e).abs() <= 1e-4 * (1.0 + e.abs()))
            });
            if same {
                return Ok(Found {
                    heads,
                    causal,
                    tail: tail_len,
                    output,
                    shape: result.shape.clone(),
                    batch: output_batch,
                });
            }
        }
    }
    Err(String::from(
        "its nodes do not compute PyTorch's scaled dot-product attention (`MultiHeadAttention`) for any number of \
         heads, with or without a causal mask (another scale, a mask, or a projection of its own)",
    ))
}

/// `x W^T + b` for `rows` rows.
fn project(
    x: &[f32],
    rows: usize,
    inputs: usize,
    outputs: usize,
    w: &[f32],
    b: Option<&(Vec<f32>, String)>,
) -> Vec<f32> {
    let mut y = vec![0.0; rows * outputs];
    for r in 0..rows {
        for o in 0..outputs {
            let mut sum = b.map_or(0.0, |(b, _)| b[o]);
            for i in 0..inputs {
                sum += x[r * inputs + i] * w[o * inputs + i];
            }
            y[r * outputs + o] = sum;
        }
    }
    y
}

/// PyTorch's `nn.MultiheadAttention` of one sample `[T, D]`.
fn reference(
    x: &[f32],
    steps: usize,
    d: usize,
    heads: usize,
    causal: bool,
    input_proj: &Projection,
    out_proj: &Projection,
) -> Vec<f32> {
    let qkv = project(x, steps, d, 3 * d, &input_proj.weight, input_proj.bias.as_ref());
    let hd = d / heads;
    let scale = 1.0 / (hd as f32).sqrt();
    let mut attended = vec![0.0; steps * d];
    for h in 0..heads {
        for i in 0..steps {
            let q = &qkv[i * 3 * d + h * hd..][..hd];
            let keys = if causal { i + 1 } else { steps };
            let scores: Vec<f32> = (0..keys)
                .map(|j| q.iter().zip(&qkv[j * 3 * d + d + h * hd..][..hd]).map(|(a, b)| a * b).sum::<f32>() * scale)
                .collect();
            let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let weights: Vec<f32> = scores.iter().map(|s| (s - max).exp()).collect();
            let sum: f32 = weights.iter().sum();
            for (j, w) in weights.iter().enumerate() {
                let v = &qkv[j * 3 * d + 2 * d + h * hd..][..hd];
                for k in 0..hd {
                    attended[i * d + h * hd + k] += w / sum * v[k];
                }
            }
        }
    }
    project(&attended, steps, d, d, &out_proj.weight, out_proj.bias.as_ref())
}
