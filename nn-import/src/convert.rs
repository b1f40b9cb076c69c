//! ONNX nodes to `network!` statements and `state_dict` tensors.
//!
//! The nodes are visited in graph order. Each ONNX tensor computed from the input is
//! tracked as a [`Tracked`]: the network value holding it and its [`Layout`]. A node
//! becomes a layer statement, a merge (`add`, `multiply`, `concat`), nothing (a
//! reshape or transpose the layout absorbs; `Dropout`, `Identity`), or an
//! [`Unsupported`] entry; conversion goes on after an unsupported node so that one
//! report lists them all.
use std::collections::{HashMap, HashSet};

use crate::attention;
use crate::error::Unsupported;
use crate::layout::{elements, Layout};
use crate::names::Names;
use crate::onnx::{Constant, Graph, Node};

/// A tensor of the graph as a value of the network.
#[derive(Clone, Debug)]
pub(crate) struct Tracked {
    /// The network value's name.
    pub value: String,
    /// The network value's shape (one sample).
    pub stored: Vec<usize>,
    pub layout: Layout,
}

/// One statement of the generated network.
#[derive(Clone, Debug)]
pub(crate) struct Stmt {
    /// The value it defines.
    pub out: String,
    /// The layer's name, or `None` for a merge.
    pub layer: Option<String>,
    /// `Dense { units: 10 }`, or the merge `add`, `multiply`, `concat`.
    pub kind: String,
    /// Extra merge arguments (`axis: 1`).
    pub merge_args: Option<String>,
    pub inputs: Vec<String>,
    /// The value's shape.
    pub shape: Vec<usize>,
}

/// A `state_dict` tensor.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    /// `fc1.weight`.
    pub name: String,
    pub shape: Vec<usize>,
    pub values: Vec<f32>,
}

/// The converted network.
#[derive(Debug)]
pub(crate) struct Converted {
    /// The network's inputs: value name and sample shape, in the graph's order.
    pub inputs: Vec<(String, Vec<usize>)>,
    /// The inputs that are recurrent initial states (batch on ONNX's axis 1).
    pub states: Vec<String>,
    /// The network's outputs, likewise.
    pub outputs: Vec<(String, Vec<usize>)>,
    pub stmts: Vec<Stmt>,
    pub tensors: Vec<Tensor>,
}

/// The operators the importer knows, for the message about the others.
pub(crate) const OPERATORS: &[&str] = &[
    "Gemm",
    "MatMul",
    "Add",
    "Mul",
    "Conv",
    "ConvTranspose",
    "MaxPool",
    "AveragePool",
    "GlobalAveragePool",
    "GlobalMaxPool",
    "ReduceMean",
    "ReduceMax",
    "BatchNormalization",
    "Relu",
    "LeakyRelu",
    "Sigmoid",
    "Tanh",
    "Softmax",
    "Gelu",
    "Clip",
    "Max",
    "Elu",
    "Flatten",
    "Reshape",
    "Squeeze",
    "Unsqueeze",
    "Transpose",
    "Concat",
    "Slice",
    "LSTM",
    "GRU",
    "RNN",
    "LayerNormalization",
    "Gather",
    "Dropout",
    "Identity",
];

/// An unsupported node's reason.
type Reason = String;

struct Converter<'g> {
    graph: &'g Graph,
    tracked: HashMap<String, Tracked>,
    /// Values computed by unsupported nodes (their consumers are skipped quietly).
    poisoned: HashSet<String>,
    stmts: Vec<Stmt>,
    tensors: Vec<Tensor>,
    names: Names,
    /// How many nodes read each value (graph outputs count as readers).
    readers: HashMap<String, usize>,
    /// Nodes already folded into an earlier layer (a bias `Add`, an activation).
    absorbed: HashSet<usize>,
    /// Reshapes made for a consumer, by (value, shape), reused.
    reshapes: HashMap<(String, Vec<usize>), String>,
    unsupported: Vec<Unsupported>,
}

/// Converts the graph whose inputs have the fixed shapes `input_shapes`, one per
/// graph input, each with its batch on axis `batch_axes` (0, or 1 for a recurrent
/// layer's initial state `[directions, batch, hidden]`).
pub(crate) fn convert(
    graph: &Graph,
    input_shapes: &[Vec<usize>],
    batch_axes: &[usize],
) -> Result<Converted, Vec<Unsupported>> {
    let mut readers: HashMap<String, usize> = HashMap::new();
    for node in &graph.nodes {
        for input in node.inputs.iter().filter(|i| !i.is_empty()) {
            *readers.entry(input.clone()).or_default() += 1;
        }
    }
    for output in &graph.outputs {
        *readers.entry(output.name.clone()).or_default() += 1;
    }
    let names = Names::default();
    let mut c = Converter {
        graph,
        tracked: HashMap::new(),
        poisoned: HashSet::new(),
        stmts: Vec::new(),
        tensors: Vec::new(),
        names,
        readers,
        absorbed: HashSet::new(),
        reshapes: HashMap::new(),
        unsupported: Vec::new(),
    };
    let mut inputs = Vec::new();
    let mut states = Vec::new();
    for ((input, shape), &batch) in graph.inputs.iter().zip(input_shapes).zip(batch_axes) {
        let value = c.names.value(&input.name, "input");
        let layout = Layout::plain(shape.clone(), batch);
        let stored = layout.sample();
        c.tracked.insert(input.name.clone(), Tracked { value: value.clone(), stored: stored.clone(), layout });
        if batch != 0 {
            states.push(value.clone());
        }
        inputs.push((value, stored));
    }
    for (index, node) in graph.nodes.iter().enumerate() {
        if c.absorbed.contains(&index) {
            continue;
        }
        let reads_poison = node.inputs.iter().any(|i| c.poisoned.contains(i));
        let failed = if reads_poison && OPERATORS.contains(&node.op.as_str()) {
            true
        } else if let Err(reason) = c.node(node) {
            c.unsupported.push(Unsupported {
                op: node.op.clone(),
                node: node.name.clone(),
                input_shapes: node.inputs.iter().filter(|i| !i.is_empty()).map(|i| c.shape_text(i)).collect(),
                reason,
            });
            true
        } else {
            false
        };
        if failed {
            c.stand_in(node);
        }
    }
    let mut outputs = Vec::new();
    for output in &graph.outputs {
        let Some(out) = c.tracked.get(&output.name).cloned() else {
            if !c.poisoned.contains(&output.name) {
                c.unsupported.push(Unsupported {
                    op: String::from("(graph)"),
                    node: output.name.clone(),
                    input_shapes: Vec::new(),
                    reason: String::from("the graph's output is not computed from its inputs"),
                });
            }
            continue;
        };
        match c.sample_value(&out) {
            Ok(value) if inputs.iter().any(|(i, _)| *i == value) => c.unsupported.push(Unsupported {
                op: String::from("(graph output)"),
                node: output.name.clone(),
                input_shapes: vec![format!("{:?}", out.layout.shape)],
                reason: String::from("the output is an input of the graph, unchanged"),
            }),
            Ok(value) => outputs.push((value, out.layout.sample())),
            Err(reason) => c.unsupported.push(Unsupported {
                op: String::from("(graph output)"),
                node: output.name.clone(),
                input_shapes: vec![format!("{:?}", out.layout.shape)],
                reason,
            }),
        }
    }
    if !c.unsupported.is_empty() {
        return Err(c.unsupported);
    }
    Ok(Converted { inputs, states, outputs, stmts: c.stmts, tensors: c.tensors })
}

/// LSTM gate blocks: PyTorch's order (input, forget, cell, output) as indices of
/// ONNX's (input, output, forget, cell).
const LSTM_GATES: [usize; 4] = [0, 2, 3, 1];
/// GRU gate blocks: PyTorch's order (reset, update, new) as indices of ONNX's
/// (update, reset, hidden).
const GRU_GATES: [usize; 3] = [1, 0, 2];

impl Converter<'_> {
    fn constant(&self, name: &str) -> Option<&Constant> {
        self.graph.constants.get(name)
    }

    /// Stands in for the outputs of a node that was not converted: a value whose
    /// shape ONNX's shape inference recorded, so that the nodes after it are checked
    /// too; otherwise a poisoned value whose readers are skipped.
    fn stand_in(&mut self, node: &Node) {
        for out in &node.outputs {
            match self.declared_shape(out) {
                Some(shape) => {
                    let layout = Layout::plain(shape, 0);
                    let value = String::from("unknown");
                    self.tracked.insert(out.clone(), Tracked { value, stored: layout.sample(), layout });
                }
                None => {
                    self.poisoned.insert(out.clone());
                }
            }
        }
    }

    /// The fixed shape ONNX's shape inference recorded for a value.
    fn declared_shape(&self, name: &str) -> Option<Vec<usize>> {
        let info = self.graph.value_info.get(name).or_else(|| self.graph.outputs.iter().find(|o| o.name == name))?;
        info.dims
            .as_ref()?
            .iter()
            .map(|d| match d {
                crate::onnx::Dim::Fixed(n) => Some(*n),
                crate::onnx::Dim::Dynamic(_) => None,
            })
            .collect::<Option<Vec<usize>>>()
            .filter(|s| s.len() >= 2)
    }

    fn shape_text(&self, name: &str) -> String {
        if let Some(t) = self.tracked.get(name) {
            return format!("{:?}", t.layout.shape);
        }
        if let Some(c) = self.constant(name) {
            return format!("{:?} (constant)", c.shape);
        }
        let info = self.graph.value_info.get(name).or_else(|| self.graph.outputs.iter().find(|o| o.name == name));
        match info.and_then(|v| v.dims.as_ref()) {
            Some(dims) => format!("[{}]", dims.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")),
            None => String::from("?"),
        }
    }

    /// The tracked tensor of input `index` of `node`.
    fn input(&self, node: &Node, index: usize) -> Result<Tracked, Reason> {
        let name = node.input(index).ok_or_else(|| format!("input {index} is missing"))?;
        if let Some(t) = self.tracked.get(name) {
            return Ok(t.clone());
        }
        if self.constant(name).is_some() {
            return Err(format!("input {index} (`{name}`) is a constant where the library needs a computed value"));
        }
        Err(format!("input {index} (`{name}`) is not computed from the graph's input"))
    }

    /// The constant input `index` of `node`.
    fn const_input(&self, node: &Node, index: usize, what: &str) -> Result<&Constant, Reason> {
        let name = node.input(index).ok_or_else(|| format!("its {what} (input {index}) is missing"))?;
        self.constant(name).ok_or_else(|| {
            format!("its {what} (`{name}`) is computed at run time; the library needs it as a constant initializer")
        })
    }

    /// Whether a value has exactly one reader and is not a graph output.
    fn single_reader(&self, value: &str) -> Option<usize> {
        if self.readers.get(value) != Some(&1) || self.graph.outputs.iter().any(|o| o.name == value) {
            return None;
        }
        self.graph.nodes.iter().position(|n| n.inputs.iter().any(|i| i == value))
    }

    /// The network value holding `t` as a sample of its ONNX shape, adding a
    /// `Reshape` (or `Flatten`) when the stored shape differs.
    fn sample_value(&mut self, t: &Tracked) -> Result<String, Reason> {
        if !t.layout.in_order() {
            return Err(format!(
                "its input {:?} has sample axes reordered by a `Transpose` (order {:?}); the library has no layer \
                 that permutes axes",
                t.layout.shape, t.layout.perm
            ));
        }
        let want = t.layout.sample();
        if want == t.stored {
            return Ok(t.value.clone());
        }
        let key = (t.value.clone(), want.clone());
        if let Some(v) = self.reshapes.get(&key) {
            return Ok(v.clone());
        }
        let (base, kind) = if want.len() == 1 {
            ("flatten", String::from("Flatten"))
        } else {
            ("reshape", format!("Reshape {{ shape: {} }}", dims(&want)))
        };
        let layer = self.names.layer(base, base);
        let out = self.names.value(&layer, base);
        self.stmts.push(Stmt {
            out: out.clone(),
            layer: Some(layer),
            kind,
            merge_args: None,
            inputs: vec![t.value.clone()],
            shape: want,
        });
        self.reshapes.insert(key, out.clone());
        Ok(out)
    }

    /// Adds a layer statement reading `inputs`, and tracks `onnx_out` as its result.
    fn layer(
        &mut self,
        layer: String,
        kind: String,
        input: String,
        stored: Vec<usize>,
        layout: Layout,
        onnx_out: &str,
    ) {
        let out = self.names.value(&layer, "value");
        self.stmts.push(Stmt {
            out: out.clone(),
            layer: Some(layer),
            kind,
            merge_args: None,
            inputs: vec![input],
            shape: stored.clone(),
        });
        self.tracked.insert(onnx_out.to_string(), Tracked { value: out, stored, layout });
    }

    fn tensor(&mut self, layer: &str, name: &str, shape: Vec<usize>, values: Vec<f32>) {
        self.tensors.push(Tensor { name: format!("{layer}.{name}"), shape, values });
    }

    /// A layer name for `node`, from the name of its weight (`fc1.weight` gives
    /// `fc1`) or else from the node's name or operator.
    fn layer_name(&mut self, node: &Node, weight_input: Option<usize>, fallback: &str) -> String {
        let from_weight = weight_input.and_then(|i| node.input(i)).and_then(|w| {
            let stem = w.strip_suffix(".weight").or_else(|| w.strip_suffix(".weight_ih_l0"))?;
            Some(stem.to_string())
        });
        let source = from_weight.unwrap_or_else(|| node.name.clone());
        self.names.layer(&source, fallback)
    }

    fn output<'n>(&self, node: &'n Node) -> Result<&'n str, Reason> {
        node.outputs.first().map(String::as_str).ok_or_else(|| String::from("it has no output"))
    }

    fn alias(&mut self, node: &Node, t: Tracked) -> Result<(), Reason> {
        let out = self.output(node)?.to_string();
        self.tracked.insert(out, t);
        Ok(())
    }

    fn node(&mut self, node: &Node) -> Result<(), Reason> {
        if !node.domain.is_empty() && node.domain != "ai.onnx" {
            return Err(format!("an operator of the domain `{}`, which the library does not implement", node.domain));
        }
        match node.op.as_str() {
            "Identity" | "Dropout" => {
                let t = self.input(node, 0)?;
                if node.outputs.get(1).is_some_and(|m| !m.is_empty() && self.readers.contains_key(m)) {
                    return Err(String::from("its dropout mask is read by another node"));
                }
                self.alias(node, t)
            }
            "Gemm" => self.gemm(node),
            "MatMul" => self.matmul(node),
            "Conv" => self.conv(node),
            "ConvTranspose" => self.conv_transpose(node),
            "MaxPool" | "AveragePool" => self.pool(node),
            "GlobalAveragePool" | "GlobalMaxPool" => self.global_pool(node),
            "ReduceMean" | "ReduceMax" => self.reduce(node),
            "BatchNormalization" => self.batch_norm(node),
            "Relu" | "LeakyRelu" | "Sigmoid" | "Tanh" | "Gelu" | "Elu" | "Softmax" | "Clip" | "Max" => {
                self.activation(node)
            }
            "Flatten" => self.flatten(node),
            "Reshape" | "Squeeze" | "Unsqueeze" => self.reshape(node),
            "Transpose" => {
                let t = self.input(node, 0)?;
                let rank = t.layout.shape.len();
                let perm: Vec<usize> = match node.ints("perm") {
                    Some(p) => p.iter().map(|&a| usize::try_from(a).unwrap_or(usize::MAX)).collect(),
                    None => (0..rank).rev().collect(),
                };
                let layout = t
                    .layout
                    .transposed(&perm)
                    .ok_or_else(|| format!("`perm` {perm:?} is not a permutation of {rank} axes"))?;
                self.alias(node, Tracked { layout, ..t })
            }
            "Add" | "Mul" => self.merge(node),
            "Concat" => self.concat(node),
            "Slice" => self.slice(node),
            "LSTM" | "GRU" | "RNN" => self.recurrent(node),
            "LayerNormalization" => self.layer_norm(node),
            "Gather" => self.gather(node),
            other => Err(format!("no layer of the library computes `{other}`")),
        }
    }

    /// A `Dense` (or `SequenceDense`) layer with weight `[units, features]`, reading
    /// `x`; folds a following bias `Add` (MatMul) and a following activation.
    fn dense(
        &mut self,
        node: &Node,
        x: Tracked,
        weight: Vec<f32>,
        units: usize,
        mut bias: Option<Vec<f32>>,
        weight_input: usize,
    ) -> Result<(), Reason> {
        let sample = x.layout.sample();
        let (sequence, features) = match sample.as_slice() {
            [f] => (false, *f),
            [_, f] => (true, *f),
            _ => {
                return Err(format!(
                    "its input {:?} has {} sample axes; `Dense` reads a vector and `SequenceDense` a sequence \
                     `[time, features]`",
                    x.layout.shape,
                    sample.len()
                ))
            }
        };
        if x.layout.batch != 0 {
            return Err(format!("its input {:?} does not have the batch axis first", x.layout.shape));
        }
        let input = self.sample_value(&x)?;
        let mut out_name = self.output(node)?.to_string();
        let mut bias_name = None;
        // A bias added by the next node (MatMul then Add).
        if bias.is_none() {
            if let Some(add) = self.single_reader(&out_name) {
                let add_node = &self.graph.nodes[add];
                if add_node.op == "Add" {
                    let other = add_node.inputs.iter().find(|i| **i != out_name);
                    if let Some(c) = other.and_then(|o| self.constant(o)) {
                        if elements(&c.shape) == units && c.shape.last() == Some(&units) {
                            bias = Some(c.floats());
                            bias_name = other.cloned();
                            self.absorbed.insert(add);
                            out_name = add_node.outputs[0].clone();
                        }
                    }
                }
            }
        }
        let mut activation = None;
        if let Some(next) = self.single_reader(&out_name) {
            let next_node = &self.graph.nodes[next];
            if let Ok(Some(a)) = self.activation_of(next_node, sample.len() + 1) {
                activation = Some(a);
                self.absorbed.insert(next);
                out_name = next_node.outputs[0].clone();
            }
        }
        let fallback = if sequence { "sequence_dense" } else { "dense" };
        let from_bias = bias_name.as_deref().and_then(|b| b.strip_suffix(".bias"));
        let named_weight = node.input(weight_input).is_some_and(|w| w.ends_with(".weight"));
        let layer = match from_bias {
            Some(stem) if !named_weight => self.names.layer(stem, fallback),
            _ => self.layer_name(node, Some(weight_input), fallback),
        };
        let mut options = vec![format!("units: {units}")];
        if let Some(a) = activation {
            options.push(format!("activation: {a}"));
        }
        if bias.is_none() {
            options.push(String::from("bias: false"));
        }
        let kind = format!("{} {{ {} }}", if sequence { "SequenceDense" } else { "Dense" }, options.join(", "));
        self.tensor(&layer, "weight", vec![units, features], weight);
        if let Some(b) = bias {
            self.tensor(&layer, "bias", vec![units], b);
        }
        let mut shape = x.layout.shape.clone();
        *shape.last_mut().unwrap_or(&mut 0) = units;
        let stored = Layout::plain(shape.clone(), 0).sample();
        self.layer(layer, kind, input, stored, Layout::plain(shape, 0), &out_name);
        Ok(())
    }

    /// The multi-head attention whose input projection is `node`, as one
    /// `MultiHeadAttention` layer (see [`crate::attention`]); `None` if `node` does not
    /// start one.
    fn attention(&mut self, node: &Node) -> Option<Result<(), Reason>> {
        let index = self.graph.nodes.iter().position(|n| std::ptr::eq(n, node))?;
        let x = self.tracked.get(node.input(0)?)?.clone();
        if !x.layout.in_order() {
            return None;
        }
        let m = match attention::find(self.graph, index, &x.layout.shape, x.layout.batch)? {
            Ok(m) => m,
            Err(failed) => {
                // One entry for the whole pattern: its nodes are skipped, its result
                // stands in for what it computes.
                self.absorbed.extend(failed.nodes.iter().copied());
                if let Some(last) = self.graph.nodes.iter().find(|n| n.outputs.contains(&failed.output)) {
                    self.stand_in(last);
                }
                return Some(Err(format!(
                    "the multi-head attention pattern of {} nodes from here to `{}`: {}",
                    failed.nodes.len(),
                    failed.output,
                    failed.reason
                )));
            }
        };
        let input = match self.sample_value(&x) {
            Ok(v) => v,
            Err(reason) => return Some(Err(reason)),
        };
        let d = *x.layout.shape.last().unwrap_or(&0);
        let steps = x.layout.sample()[0];
        let layer = self.names.layer(&m.name, "attention");
        self.tensor(&layer, "in_proj_weight", vec![3 * d, d], m.in_weight);
        self.tensor(&layer, "in_proj_bias", vec![3 * d], m.in_bias);
        self.tensor(&layer, "out_proj.weight", vec![d, d], m.out_weight);
        self.tensor(&layer, "out_proj.bias", vec![d], m.out_bias);
        let causal = if m.causal { ", causal: true" } else { "" };
        let kind = format!("MultiHeadAttention {{ heads: {}{causal} }}", m.heads);
        self.absorbed.extend(m.nodes.iter().copied());
        let layout = Layout::plain(m.output_shape, m.output_batch);
        self.layer(layer, kind, input, vec![steps, d], layout, &m.output);
        Some(Ok(()))
    }

    fn gemm(&mut self, node: &Node) -> Result<(), Reason> {
        if let Some(done) = self.attention(node) {
            return done;
        }
        if node.int("transA", 0) != 0 {
            return Err(String::from("`transA = 1` transposes the batch into the features"));
        }
        let x = self.input(node, 0)?;
        if x.layout.shape.len() != 2 {
            return Err(format!("`Gemm` of a rank-{} input", x.layout.shape.len()));
        }
        let b = self.const_input(node, 1, "weight")?;
        let (alpha, beta) = (node.float("alpha", 1.0), node.float("beta", 1.0));
        let [rows, cols] = b.shape[..] else { return Err(format!("its weight has shape {:?}", b.shape)) };
        let trans_b = node.int("transB", 0) != 0;
        let (units, features) = if trans_b { (rows, cols) } else { (cols, rows) };
        let values = b.floats();
        let mut weight = vec![0.0; units * features];
        for u in 0..units {
            for f in 0..features {
                let v = if trans_b { values[u * features + f] } else { values[f * units + u] };
                weight[u * features + f] = alpha * v;
            }
        }
        let bias = match node.input(2) {
            None => None,
            Some(_) => {
                let c = self.const_input(node, 2, "bias")?;
                let v = c.floats();
                let v = match v.len() {
                    1 => vec![v[0]; units],
                    n if n == units => v,
                    _ => return Err(format!("its bias of shape {:?} is not one value per unit", c.shape)),
                };
                Some(v.into_iter().map(|b| beta * b).collect())
            }
        };
        self.dense(node, x, weight, units, bias, 1)
    }

    fn matmul(&mut self, node: &Node) -> Result<(), Reason> {
        if let Some(done) = self.attention(node) {
            return done;
        }
        let x = self.input(node, 0)?;
        let w = self.const_input(node, 1, "weight")?;
        let [features, units] = w.shape[..] else {
            return Err(format!("its weight has shape {:?}; the library multiplies by a matrix", w.shape));
        };
        if x.layout.shape.last() != Some(&features) {
            return Err(format!("its input {:?} does not end with {features} features", x.layout.shape));
        }
        let values = w.floats();
        let mut weight = vec![0.0; units * features];
        for f in 0..features {
            for u in 0..units {
                weight[u * features + f] = values[f * units + u];
            }
        }
        self.dense(node, x, weight, units, None, 1)
    }

    fn conv(&mut self, node: &Node) -> Result<(), Reason> {
        let x = self.input(node, 0)?;
        let w = self.const_input(node, 1, "weight")?.clone();
        let axes = x.layout.shape.len().saturating_sub(2);
        if !(1..=2).contains(&axes) || x.layout.batch != 0 {
            return Err(format!("a {axes}-D convolution; the library has `Conv1d` and `Conv2d`"));
        }
        let channels = x.layout.shape[1];
        if w.shape.len() != axes + 2 {
            return Err(format!("its weight {:?} is not [filters, channels / group, kernel...]", w.shape));
        }
        let filters = w.shape[0];
        let group = node.int("group", 1);
        let groups = usize::try_from(group).ok().filter(|&g| g > 0 && channels % g == 0 && filters % g == 0);
        let Some(groups) = groups else {
            return Err(format!(
                "`group = {group}` does not divide its {channels} input channels and {filters} filters"
            ));
        };
        if w.shape[1] * groups != channels {
            return Err(format!(
                "its weight {:?} does not read {} of the {channels} input channels per group",
                w.shape,
                channels / groups
            ));
        }
        let kernel = w.shape[2..].to_vec();
        let geometry = Geometry::read(node, &kernel, &x.layout.shape[2..])?;
        let input = self.sample_value(&x)?;
        let layer = self.layer_name(node, Some(1), "conv");
        let mut options = vec![format!("filters: {filters}"), format!("kernel: {}", sizes(&kernel))];
        geometry.options(&mut options, true);
        if groups != 1 {
            options.push(format!("groups: {groups}"));
        }
        // A bias of zeros that the exporter made up for a convolution without one
        // (PyTorch's `bias=False`) is left out, as in the module's `state_dict`.
        let bias = match node.input(2) {
            Some(name) => {
                let b = self.const_input(node, 2, "bias")?.floats();
                let made_up = !name.ends_with(".bias") && b.iter().all(|&v| v == 0.0);
                (!made_up).then_some(b)
            }
            None => None,
        };
        if bias.is_none() {
            options.push(String::from("bias: false"));
        }
        let kind = format!("Conv{axes}d {{ {} }}", options.join(", "));
        self.tensor(&layer, "weight", w.shape.clone(), w.floats());
        if let Some(b) = bias {
            self.tensor(&layer, "bias", vec![filters], b);
        }
        let mut shape = vec![x.layout.shape[0], filters];
        shape.extend(geometry.output(&x.layout.shape[2..], &kernel));
        let out = self.output(node)?.to_string();
        let stored = shape[1..].to_vec();
        self.layer(layer, kind, input, stored, Layout::plain(shape, 0), &out);
        Ok(())
    }

    fn conv_transpose(&mut self, node: &Node) -> Result<(), Reason> {
        let x = self.input(node, 0)?;
        let w = self.const_input(node, 1, "weight")?.clone();
        if x.layout.shape.len() != 4 || x.layout.batch != 0 {
            return Err(format!(
                "a transposed convolution of {:?}; the library has `ConvTranspose2d` for images",
                x.layout.shape
            ));
        }
        let group = node.int("group", 1);
        if group != 1 {
            return Err(format!("`group = {group}`; the library's `ConvTranspose2d` has no groups"));
        }
        if node.attrs.contains_key("output_shape") {
            return Err(String::from("`output_shape` is given; give `pads` and `output_padding` instead"));
        }
        if node.text("auto_pad").is_some_and(|a| a != "NOTSET" && a != "VALID") {
            return Err(String::from("`auto_pad = SAME_*`; give `pads` instead"));
        }
        let (filters, kernel) = (w.shape[1], w.shape[2..].to_vec());
        let list = |name: &str, default: usize, len: usize| -> Vec<usize> {
            node.ints(name)
                .map(|v| v.iter().map(|&x| usize::try_from(x).unwrap_or(0)).collect())
                .unwrap_or_else(|| vec![default; len])
        };
        let (stride, dilation, pads, extra) =
            (list("strides", 1, 2), list("dilations", 1, 2), list("pads", 0, 4), list("output_padding", 0, 2));
        if stride.len() != 2 || dilation.len() != 2 || pads.len() != 4 || extra.len() != 2 || kernel.len() != 2 {
            return Err(String::from("its strides, dilations, pads or output padding do not have one value per axis"));
        }
        if pads[..2] != pads[2..] {
            return Err(format!("asymmetric padding {pads:?}; the library crops both sides of an axis alike"));
        }
        let mut shape = vec![x.layout.shape[0], filters];
        for i in 0..2 {
            let full = (x.layout.shape[2 + i] - 1) * stride[i] + dilation[i] * (kernel[i] - 1) + extra[i] + 1;
            shape.push(full.checked_sub(2 * pads[i]).filter(|&n| n > 0).ok_or("its padding crops the whole output")?);
        }
        let input = self.sample_value(&x)?;
        let layer = self.layer_name(node, Some(1), "conv_transpose");
        let mut options = vec![format!("filters: {filters}"), format!("kernel: {}", sizes(&kernel))];
        for (name, values, default) in [
            ("stride", &stride, 1),
            ("padding", &pads[..2].to_vec(), 0),
            ("output_padding", &extra, 0),
            ("dilation", &dilation, 1),
        ] {
            if values.iter().any(|&v| v != default) {
                options.push(format!("{name}: {}", sizes(values)));
            }
        }
        let bias = match node.input(2) {
            Some(_) => Some(self.const_input(node, 2, "bias")?.floats()),
            None => None,
        };
        if bias.is_none() {
            options.push(String::from("bias: false"));
        }
        self.tensor(&layer, "weight", w.shape.clone(), w.floats());
        if let Some(b) = bias {
            self.tensor(&layer, "bias", vec![filters], b);
        }
        let kind = format!("ConvTranspose2d {{ {} }}", options.join(", "));
        let out = self.output(node)?.to_string();
        self.layer(layer, kind, input, shape[1..].to_vec(), Layout::plain(shape, 0), &out);
        Ok(())
    }

    fn pool(&mut self, node: &Node) -> Result<(), Reason> {
        let x = self.input(node, 0)?;
        let axes = x.layout.shape.len().saturating_sub(2);
        if !(1..=2).contains(&axes) || x.layout.batch != 0 {
            return Err(format!("a {axes}-D pooling; the library pools signals and images"));
        }
        let kernel: Vec<usize> = node
            .ints("kernel_shape")
            .ok_or("it has no `kernel_shape`")?
            .iter()
            .map(|&k| usize::try_from(k).unwrap_or(0))
            .collect();
        if node.int("ceil_mode", 0) != 0 {
            return Err(String::from("`ceil_mode = 1`; the library's pooling rounds the output size down"));
        }
        if node.int("storage_order", 0) != 0 {
            return Err(String::from("`storage_order = 1`"));
        }
        let geometry = Geometry::read(node, &kernel, &x.layout.shape[2..])?;
        if geometry.dilation.iter().any(|&d| d != 1) {
            return Err(String::from("a dilated pooling; the library's pooling has no dilation"));
        }
        let max = node.op == "MaxPool";
        if !max && geometry.padding.iter().any(|&p| p != 0) && node.int("count_include_pad", 0) == 0 {
            return Err(String::from(
                "average pooling with padding and `count_include_pad = 0`; the library counts the padding as zeros \
                 (PyTorch's default `count_include_pad=True`)",
            ));
        }
        if node.outputs.get(1).is_some_and(|o| !o.is_empty() && self.readers.contains_key(o)) {
            return Err(String::from("its indices output is read"));
        }
        let input = self.sample_value(&x)?;
        let layer = self.layer_name(node, None, if max { "max_pool" } else { "avg_pool" });
        let mut options = vec![format!("size: {}", sizes(&kernel))];
        if geometry.stride != kernel {
            options.push(format!("stride: {}", sizes(&geometry.stride)));
        }
        if geometry.padding.iter().any(|&p| p != 0) {
            options.push(format!("padding: {}", sizes(&geometry.padding)));
        }
        let kind = format!("{}Pool{axes}d {{ {} }}", if max { "Max" } else { "Avg" }, options.join(", "));
        let mut shape = x.layout.shape[..2].to_vec();
        shape.extend(geometry.output(&x.layout.shape[2..], &kernel));
        let out = self.output(node)?.to_string();
        self.layer(layer, kind, input, shape[1..].to_vec(), Layout::plain(shape, 0), &out);
        Ok(())
    }

    fn global_pool(&mut self, node: &Node) -> Result<(), Reason> {
        let x = self.input(node, 0)?;
        let axes = x.layout.shape.len().saturating_sub(2);
        if !(1..=2).contains(&axes) || x.layout.batch != 0 {
            return Err(format!("a {axes}-D pooling; the library pools signals and images"));
        }
        let input = self.sample_value(&x)?;
        let max = node.op == "GlobalMaxPool";
        let layer = self.layer_name(node, None, if max { "global_max_pool" } else { "global_avg_pool" });
        let kind = format!("Global{}Pool{axes}d", if max { "Max" } else { "Avg" });
        let channels = x.layout.shape[1];
        let mut shape = vec![x.layout.shape[0], channels];
        shape.extend(std::iter::repeat_n(1, axes));
        let out = self.output(node)?.to_string();
        self.layer(layer, kind, input, vec![channels], Layout::plain(shape, 0), &out);
        Ok(())
    }

    /// A mean or maximum over every spatial axis of a signal or image: a global
    /// pooling.
    fn reduce(&mut self, node: &Node) -> Result<(), Reason> {
        let x = self.input(node, 0)?;
        let rank = x.layout.shape.len();
        let axes: Vec<i64> = match node.input(1) {
            Some(_) => self.const_input(node, 1, "axes")?.ints().ok_or("its axes are not integers")?.to_vec(),
            None => node.ints("axes").map(<[i64]>::to_vec).unwrap_or_default(),
        };
        let mut axes: Vec<usize> = axes.iter().map(|&a| (if a < 0 { a + rank as i64 } else { a }) as usize).collect();
        axes.sort_unstable();
        let spatial: Vec<usize> = (2..rank).collect();
        if x.layout.batch != 0 || !(3..=4).contains(&rank) || axes != spatial {
            return Err(format!(
                "it reduces axes {axes:?} of {:?}; the library reduces every spatial axis of a signal or image (a \
                 global pooling)",
                x.layout.shape
            ));
        }
        let input = self.sample_value(&x)?;
        let max = node.op == "ReduceMax";
        let layer = self.layer_name(node, None, if max { "global_max_pool" } else { "global_avg_pool" });
        let kind = format!("Global{}Pool{}d", if max { "Max" } else { "Avg" }, rank - 2);
        let channels = x.layout.shape[1];
        let shape = if node.int("keepdims", 1) != 0 {
            let mut shape = vec![x.layout.shape[0], channels];
            shape.extend(std::iter::repeat_n(1, rank - 2));
            shape
        } else {
            vec![x.layout.shape[0], channels]
        };
        let out = self.output(node)?.to_string();
        self.layer(layer, kind, input, vec![channels], Layout::plain(shape, 0), &out);
        Ok(())
    }

    fn batch_norm(&mut self, node: &Node) -> Result<(), Reason> {
        let x = self.input(node, 0)?;
        if node.int("training_mode", 0) != 0 {
            return Err(String::from("`training_mode = 1`: an exported model normalises with its running statistics"));
        }
        let rank = x.layout.shape.len();
        if !(2..=4).contains(&rank) || x.layout.batch != 0 {
            return Err(format!(
                "a batch norm of a rank-{rank} tensor; the library has `BatchNorm1d` and `BatchNorm2d`"
            ));
        }
        let channels = x.layout.shape[1];
        let mut parts = Vec::new();
        for (i, what) in [(1, "scale"), (2, "bias"), (3, "mean"), (4, "variance")] {
            let c = self.const_input(node, i, what)?;
            if c.shape != [channels] {
                return Err(format!("its {what} has shape {:?}, not [{channels}]", c.shape));
            }
            parts.push(c.floats());
        }
        let input = self.sample_value(&x)?;
        let layer = self.layer_name(node, Some(1), "batch_norm");
        let mut options = Vec::new();
        let momentum = 1.0 - node.float("momentum", 0.9);
        if (momentum - 0.1).abs() > 1e-6 {
            options.push(format!("momentum: {}", float(momentum)));
        }
        let eps = node.float("epsilon", 1e-5);
        if eps != 1e-5 {
            options.push(format!("eps: {}", float(eps)));
        }
        let name = if rank == 4 { "BatchNorm2d" } else { "BatchNorm1d" };
        let kind = if options.is_empty() { name.to_string() } else { format!("{name} {{ {} }}", options.join(", ")) };
        for ((name, values), _) in ["weight", "bias", "running_mean", "running_var"].iter().zip(parts).zip(0..) {
            self.tensor(&layer, name, vec![channels], values);
        }
        self.tensor(&layer, "num_batches_tracked", Vec::new(), vec![0.0]);
        let out = self.output(node)?.to_string();
        let stored = x.layout.sample();
        self.layer(layer, kind, input, stored, x.layout.clone(), &out);
        Ok(())
    }

    fn activation(&mut self, node: &Node) -> Result<(), Reason> {
        // `Max(0, x)` reads its value second.
        let computed = node.op == "Max" && node.input(0).is_some_and(|i| self.constant(i).is_some());
        let x = self.input(node, usize::from(computed))?;
        let rank = x.layout.shape.len();
        let kind = self.activation_of(node, rank)?.ok_or_else(|| String::from("not an activation"))?;
        let input = if node.op == "Softmax" {
            if x.layout.batch == rank - 1 {
                return Err(String::from("a softmax over the batch axis"));
            }
            self.sample_value(&x)?
        } else {
            x.value.clone()
        };
        let fallback = kind.split('(').next().unwrap_or("act").to_lowercase();
        let layer = self.layer_name(node, None, &fallback);
        let kind = match kind.split_once('(') {
            Some((name, alpha)) => format!("{name} {{ alpha: {} }}", alpha.trim_end_matches(')')),
            None => kind,
        };
        let out = self.output(node)?.to_string();
        let stored = if node.op == "Softmax" { x.layout.sample() } else { x.stored.clone() };
        self.layer(layer, kind, input, stored, x.layout.clone(), &out);
        Ok(())
    }

    fn flatten(&mut self, node: &Node) -> Result<(), Reason> {
        let x = self.input(node, 0)?;
        let rank = x.layout.shape.len() as i64;
        let mut axis = node.int("axis", 1);
        if axis < 0 {
            axis += rank;
        }
        if axis != 1 || x.layout.batch != 0 {
            return Err(format!("`axis = {axis}` does not keep the batch axis {} alone", x.layout.batch));
        }
        let shape = vec![x.layout.shape[0], elements(&x.layout.shape[1..])];
        let layout = x.layout.reshaped(&shape)?;
        self.alias(node, Tracked { layout, ..x })
    }

    fn reshape(&mut self, node: &Node) -> Result<(), Reason> {
        let x = self.input(node, 0)?;
        let old = &x.layout.shape;
        let shape: Vec<usize> = match node.op.as_str() {
            "Reshape" => {
                let target = self.const_input(node, 1, "target shape")?;
                let target = target.ints().ok_or("its target shape is not integers")?.to_vec();
                if node.int("allowzero", 0) != 0 && target.contains(&0) {
                    return Err(String::from("`allowzero = 1` with a zero dimension"));
                }
                resolve_reshape(old, &target)?
            }
            op => {
                let axes: Vec<i64> = match node.input(1) {
                    Some(_) => self.const_input(node, 1, "axes")?.ints().ok_or("its axes are not integers")?.to_vec(),
                    None => node.ints("axes").map(<[i64]>::to_vec).unwrap_or_default(),
                };
                if op == "Squeeze" {
                    let rank = old.len() as i64;
                    let axes: Vec<usize> = if axes.is_empty() {
                        (0..old.len()).filter(|&a| old[a] == 1 && a != x.layout.batch).collect()
                    } else {
                        axes.iter().map(|&a| (if a < 0 { a + rank } else { a }) as usize).collect()
                    };
                    if axes.contains(&x.layout.batch) {
                        return Err(String::from("it removes the batch axis"));
                    }
                    old.iter().enumerate().filter(|(i, _)| !axes.contains(i)).map(|(_, &d)| d).collect()
                } else {
                    let rank = (old.len() + axes.len()) as i64;
                    let axes: Vec<usize> = axes.iter().map(|&a| (if a < 0 { a + rank } else { a }) as usize).collect();
                    let mut dims = old.iter().copied();
                    (0..rank as usize).map(|i| if axes.contains(&i) { 1 } else { dims.next().unwrap_or(1) }).collect()
                }
            }
        };
        let layout = x.layout.reshaped(&shape)?;
        self.alias(node, Tracked { layout, ..x })
    }

    fn merge(&mut self, node: &Node) -> Result<(), Reason> {
        let (a, b) = (self.input(node, 0), self.input(node, 1));
        let (a, b) = match (a, b) {
            (Ok(a), Ok(b)) => (a, b),
            (Err(e), _) | (_, Err(e)) => {
                let what = if node.op == "Add" { "adds" } else { "multiplies by" };
                return Err(format!("it {what} a constant tensor or an unknown value ({e}); no library layer does"));
            }
        };
        if a.layout.shape != b.layout.shape || a.layout.batch != b.layout.batch {
            return Err(format!(
                "it broadcasts {:?} with {:?}; `{}` merges values of one shape",
                a.layout.shape,
                b.layout.shape,
                if node.op == "Add" { "add" } else { "multiply" }
            ));
        }
        let (va, vb) = if a.layout.perm == b.layout.perm && a.stored == b.stored {
            (a.value.clone(), b.value.clone())
        } else {
            (self.sample_value(&a)?, self.sample_value(&b)?)
        };
        let kind = if node.op == "Add" { "add" } else { "multiply" };
        let stored = if va == a.value { a.stored.clone() } else { a.layout.sample() };
        let layout =
            if va == a.value { a.layout.clone() } else { Layout::plain(a.layout.shape.clone(), a.layout.batch) };
        let out = self.names.value(&node.name, kind);
        self.stmts.push(Stmt {
            out: out.clone(),
            layer: None,
            kind: kind.to_string(),
            merge_args: None,
            inputs: vec![va, vb],
            shape: stored.clone(),
        });
        let onnx_out = self.output(node)?.to_string();
        self.tracked.insert(onnx_out, Tracked { value: out, stored, layout });
        Ok(())
    }

    fn concat(&mut self, node: &Node) -> Result<(), Reason> {
        let parts: Vec<Tracked> = (0..node.inputs.len()).map(|i| self.input(node, i)).collect::<Result<_, _>>()?;
        let first = parts.first().ok_or("it has no inputs")?.clone();
        let rank = first.layout.shape.len() as i64;
        let axis = node.int("axis", 0);
        let axis = if axis < 0 { axis + rank } else { axis } as usize;
        if parts
            .iter()
            .any(|p| p.layout.batch != first.layout.batch || p.layout.shape.len() != first.layout.shape.len())
        {
            return Err(String::from("its inputs have the batch axis in different places"));
        }
        if axis == first.layout.batch {
            return Err(String::from("it concatenates along the batch axis"));
        }
        let mut values = Vec::new();
        for p in &parts {
            values.push(self.sample_value(p)?);
        }
        let sample_axis = axis - usize::from(axis > first.layout.batch);
        let mut shape = first.layout.shape.clone();
        shape[axis] = parts.iter().map(|p| p.layout.shape[axis]).sum();
        let layout = Layout::plain(shape, first.layout.batch);
        let out = self.names.value(&node.name, "concat");
        self.stmts.push(Stmt {
            out: out.clone(),
            layer: None,
            kind: String::from("concat"),
            merge_args: (sample_axis != 0).then(|| format!("axis: {sample_axis}")),
            inputs: values,
            shape: layout.sample(),
        });
        let onnx_out = self.output(node)?.to_string();
        self.tracked.insert(onnx_out, Tracked { value: out, stored: layout.sample(), layout });
        Ok(())
    }

    fn layer_norm(&mut self, node: &Node) -> Result<(), Reason> {
        let x = self.input(node, 0)?;
        let rank = x.layout.shape.len() as i64;
        let axis = node.int("axis", -1);
        if axis != -1 && axis != rank - 1 {
            return Err(format!("`axis = {axis}`; the library's `LayerNorm` normalises over the last axis only"));
        }
        if node.outputs.iter().skip(1).any(|o| !o.is_empty() && self.readers.contains_key(o)) {
            return Err(String::from("its mean or inverse deviation output is read"));
        }
        let width = *x.layout.shape.last().unwrap_or(&0);
        let scale = self.const_input(node, 1, "scale")?.floats();
        let bias = match node.input(2) {
            Some(_) => self.const_input(node, 2, "bias")?.floats(),
            None => vec![0.0; width],
        };
        if scale.len() != width || bias.len() != width {
            return Err(format!("its scale or bias is not one value per feature ({width})"));
        }
        let input = self.sample_value(&x)?;
        let layer = self.layer_name(node, Some(1), "layer_norm");
        let eps = node.float("epsilon", 1e-5);
        let kind = if eps == 1e-5 { String::from("LayerNorm") } else { format!("LayerNorm {{ eps: {} }}", float(eps)) };
        self.tensor(&layer, "weight", vec![width], scale);
        self.tensor(&layer, "bias", vec![width], bias);
        let out = self.output(node)?.to_string();
        self.layer(layer, kind, input, x.layout.sample(), Layout::plain(x.layout.shape.clone(), x.layout.batch), &out);
        Ok(())
    }

    fn gather(&mut self, node: &Node) -> Result<(), Reason> {
        let axis = node.int("axis", 0);
        let data_name = node.input(0).ok_or("it has no data input")?;
        if let Some(table) = self.constant(data_name).cloned() {
            // An embedding: rows of a constant table picked by computed token ids.
            let ids = self.input(node, 1)?;
            let [vocab, dim] = table.shape[..] else {
                return Err(format!(
                    "it reads a constant of shape {:?}; an embedding table is [vocab, dim]",
                    table.shape
                ));
            };
            if axis != 0 {
                return Err(String::from("it gathers along axis 1 of a constant"));
            }
            let steps = match ids.layout.sample()[..] {
                [t] if ids.layout.batch == 0 => t,
                _ => return Err(format!("its token ids {:?} are not [batch, time]", ids.layout.shape)),
            };
            let input = self.sample_value(&ids)?;
            let layer = self.layer_name(node, Some(0), "embedding");
            self.tensor(&layer, "weight", vec![vocab, dim], table.floats());
            let shape = vec![ids.layout.shape[0], steps, dim];
            let out = self.output(node)?.to_string();
            let kind = format!("Embedding {{ vocab: {vocab}, dim: {dim} }}");
            self.layer(layer, kind, input, vec![steps, dim], Layout::plain(shape, 0), &out);
            return Ok(());
        }
        let x = self.input(node, 0)?;
        let index = self.const_input(node, 1, "index")?;
        let rank = x.layout.shape.len() as i64;
        let axis = if axis < 0 { axis + rank } else { axis } as usize;
        if !index.shape.is_empty() || axis >= x.layout.shape.len() || axis == x.layout.batch {
            return Err(String::from(
                "it selects from a computed tensor by more than one fixed index on a sample axis",
            ));
        }
        if x.layout.shape[axis] != 1 {
            return Err(format!(
                "it picks one of {} positions of axis {axis} of {:?}; the library has no layer that slices a value",
                x.layout.shape[axis], x.layout.shape
            ));
        }
        let mut shape = x.layout.shape.clone();
        shape.remove(axis);
        let layout = x.layout.reshaped(&shape)?;
        self.alias(node, Tracked { layout, ..x })
    }

    /// A `Slice` that keeps every element (PyTorch's `h0[0:1]` of a one-layer
    /// state) is the value itself; the library has no layer for any other.
    fn slice(&mut self, node: &Node) -> Result<(), Reason> {
        let x = self.input(node, 0)?;
        let ints = |index: usize, what: &str| -> Result<Option<Vec<i64>>, Reason> {
            if node.input(index).is_none() {
                return Ok(None);
            }
            let c = self.const_input(node, index, what)?;
            c.ints().map(|v| Some(v.to_vec())).ok_or_else(|| format!("its {what} are not integers"))
        };
        let starts = ints(1, "starts")?.ok_or("its starts are missing")?;
        let ends = ints(2, "ends")?.ok_or("its ends are missing")?;
        let rank = x.layout.shape.len();
        let axes = ints(3, "axes")?.unwrap_or_else(|| (0..rank as i64).collect());
        let steps = ints(4, "steps")?.unwrap_or_else(|| vec![1; axes.len()]);
        if starts.len() != axes.len() || ends.len() != axes.len() || steps.len() != axes.len() {
            return Err(String::from("its starts, ends, axes and steps differ in length"));
        }
        for i in 0..axes.len() {
            let axis = if axes[i] < 0 { axes[i] + rank as i64 } else { axes[i] };
            let dim = usize::try_from(axis).ok().and_then(|a| x.layout.shape.get(a)).copied();
            let Some(dim) = dim else { return Err(format!("axis {} is not an axis of {:?}", axes[i], x.layout.shape)) };
            let whole = steps[i] == 1 && (starts[i] == 0 || starts[i] <= -(dim as i64)) && ends[i] >= dim as i64;
            if !whole {
                return Err(format!(
                    "it slices axis {axis} of {:?} to [{}, {}) step {}; the library has no layer that slices a value",
                    x.layout.shape, starts[i], ends[i], steps[i]
                ));
            }
        }
        self.alias(node, x)
    }

    /// The initial state input `index` (`initial_h` or `initial_c`) of a recurrent
    /// node: `None` when absent or a constant zero, the network value of a computed
    /// `[dirs, batch, hidden]` (stored per sample as `[dirs, hidden]`), or why not.
    fn initial_state(
        &self,
        node: &Node,
        index: usize,
        what: &str,
        dirs: usize,
        batch: usize,
        hidden: usize,
    ) -> Result<Option<String>, Reason> {
        let Some(name) = node.input(index) else { return Ok(None) };
        if let Some(c) = self.constant(name) {
            if c.floats().iter().all(|&v| v == 0.0) {
                return Ok(None);
            }
            return Err(format!(
                "its {what} is a constant that is not zero; the library's recurrent layers start from zero or from \
                 a state given as an input (make `{name}` an input of the model)"
            ));
        }
        let t = self.input(node, index)?;
        if t.layout.shape != [dirs, batch, hidden] || t.layout.batch != 1 || !t.layout.in_order() {
            return Err(format!(
                "its {what} {:?} is not a state [directions = {dirs}, batch = {batch}, hidden = {hidden}] with the \
                 batch on axis 1",
                t.layout.shape
            ));
        }
        if t.stored != [dirs, hidden] {
            return Err(format!("its {what} is stored as {:?}, not [{dirs}, {hidden}]", t.stored));
        }
        Ok(Some(t.value))
    }

    fn recurrent(&mut self, node: &Node) -> Result<(), Reason> {
        let (kind, gates) = match node.op.as_str() {
            "LSTM" => ("Lstm", 4),
            "GRU" => ("Gru", 3),
            _ => ("SimpleRnn", 1),
        };
        let x = self.input(node, 0)?;
        let layout_attr = node.int("layout", 0);
        let batch_axis = if layout_attr == 0 { 1 } else { 0 };
        if x.layout.shape.len() != 3 || x.layout.batch != batch_axis {
            return Err(format!(
                "its input {:?} is not a sequence with the batch on axis {batch_axis} (`layout = {layout_attr}`)",
                x.layout.shape
            ));
        }
        let direction = node.text("direction").unwrap_or("forward");
        let dirs = match direction {
            "forward" => 1,
            "bidirectional" => 2,
            _ => return Err(format!("`direction = {direction}`; the library runs forward or both ways")),
        };
        let hidden = usize::try_from(node.int("hidden_size", 0)).unwrap_or(0);
        let w = self.const_input(node, 1, "input weights W")?.clone();
        let r = self.const_input(node, 2, "recurrent weights R")?.clone();
        let features = *x.layout.shape.last().unwrap_or(&0);
        let gh = gates * hidden;
        if w.shape != [dirs, gh, features] || r.shape != [dirs, gh, hidden] {
            return Err(format!(
                "its weights W {:?} and R {:?} do not match `hidden_size = {hidden}`",
                w.shape, r.shape
            ));
        }
        let b = match node.input(3) {
            Some(_) => self.const_input(node, 3, "biases B")?.floats(),
            None => vec![0.0; dirs * 2 * gh],
        };
        if b.len() != dirs * 2 * gh {
            return Err(format!("its biases B have {} values, not {}", b.len(), dirs * 2 * gh));
        }
        if node.input(4).is_some() {
            return Err(String::from("`sequence_lens` is given; the library runs every sequence to its full length"));
        }
        if node.input(7).is_some() {
            return Err(String::from("its peepholes P are given; the library's LSTM has no peepholes"));
        }
        let batch = x.layout.shape[x.layout.batch];
        let h0 = self.initial_state(node, 5, "initial_h", dirs, batch, hidden)?;
        let c0 = if kind == "Lstm" { self.initial_state(node, 6, "initial_c", dirs, batch, hidden)? } else { None };
        if kind != "Lstm" && node.input(6).is_some() {
            return Err(String::from("it has an `initial_c`, which only an LSTM reads"));
        }
        // The library's LSTM takes both states or neither.
        let states = match (h0, c0) {
            (None, None) => Vec::new(),
            (Some(h), Some(c)) => vec![h, c],
            (Some(h), None) if kind != "Lstm" => vec![h],
            _ => {
                return Err(String::from(
                    "one of its initial states `initial_h` and `initial_c` is an input and the other zero; the \
                     library's LSTM takes both as inputs or neither",
                ))
            }
        };
        if node.attrs.contains_key("clip") {
            return Err(String::from("`clip` is set; the library does not clip the cell's pre-activations"));
        }
        if node.int("input_forget", 0) != 0 {
            return Err(String::from("`input_forget = 1` couples the input and forget gates"));
        }
        let mut rnn_activation = None;
        if let Some(crate::onnx::Attr::Texts(acts)) = node.attrs.get("activations") {
            let expected: &[&str] = match kind {
                "Lstm" => &["Sigmoid", "Tanh", "Tanh"],
                "Gru" => &["Sigmoid", "Tanh"],
                _ => &[],
            };
            let per_dir: Vec<&str> = acts.iter().map(String::as_str).take(acts.len() / dirs.max(1)).collect();
            if kind == "SimpleRnn" {
                match per_dir.as_slice() {
                    ["Tanh"] => {}
                    ["Relu"] => rnn_activation = Some("Relu"),
                    other => return Err(format!("activations {other:?}; `SimpleRnn` has Tanh or Relu")),
                }
            } else if !per_dir
                .iter()
                .map(|a| a.to_ascii_lowercase())
                .eq(expected.iter().map(|a| a.to_ascii_lowercase()))
            {
                return Err(format!("activations {per_dir:?}; the library's cell uses {expected:?}"));
            }
        }
        if kind == "Gru" && node.int("linear_before_reset", 0) != 1 {
            return Err(String::from(
                "`linear_before_reset = 0`; the library's GRU is PyTorch's, which applies the reset gate after the \
                 recurrent product (`linear_before_reset = 1`)",
            ));
        }
        let used = |i: usize| node.outputs.get(i).is_some_and(|o| !o.is_empty() && self.readers.contains_key(o));
        let (sequences, last) = (used(0), used(1));
        if used(2) || (sequences && last) {
            return Err(String::from(
                "it uses both its output sequence and its final state (or the LSTM's cell state); the library's \
                 layer returns one of them",
            ));
        }
        let input = self.sample_value(&x)?;
        let layer = self.layer_name(node, None, &kind.to_lowercase());
        let order: &[usize] = match kind {
            "Lstm" => &LSTM_GATES,
            "Gru" => &GRU_GATES,
            _ => &[0],
        };
        let permute = |values: &[f32], row: usize| -> Vec<f32> {
            let block = hidden * row;
            order.iter().flat_map(|&g| values[g * block..(g + 1) * block].iter().copied()).collect()
        };
        let (wv, rv) = (w.floats(), r.floats());
        for d in 0..dirs {
            let suffix = if d == 1 { "_reverse" } else { "" };
            let wd = &wv[d * gh * features..(d + 1) * gh * features];
            let rd = &rv[d * gh * hidden..(d + 1) * gh * hidden];
            let bd = &b[d * 2 * gh..(d + 1) * 2 * gh];
            self.tensor(&layer, &format!("weight_ih_l0{suffix}"), vec![gh, features], permute(wd, features));
            self.tensor(&layer, &format!("weight_hh_l0{suffix}"), vec![gh, hidden], permute(rd, hidden));
            self.tensor(&layer, &format!("bias_ih_l0{suffix}"), vec![gh], permute(&bd[..gh], 1));
            self.tensor(&layer, &format!("bias_hh_l0{suffix}"), vec![gh], permute(&bd[gh..], 1));
        }
        let mut options = vec![format!("units: {hidden}")];
        if let Some(a) = rnn_activation {
            options.push(format!("activation: {a}"));
        }
        if sequences {
            options.push(String::from("return_sequences: true"));
        }
        if dirs == 2 {
            options.push(String::from("bidirectional: true"));
        }
        let text = format!("{kind} {{ {} }}", options.join(", "));
        let steps = x.layout.sample()[0];
        let (onnx_out, stored, layout) = if sequences {
            let (shape, batch_at) = if layout_attr == 0 {
                (vec![steps, dirs, batch, hidden], 2)
            } else {
                (vec![batch, steps, dirs, hidden], 0)
            };
            (node.outputs[0].clone(), vec![steps, dirs * hidden], Layout::plain(shape, batch_at))
        } else {
            let (shape, batch_at) =
                if layout_attr == 0 { (vec![dirs, batch, hidden], 1) } else { (vec![batch, dirs, hidden], 0) };
            let out = node.outputs.get(1).cloned().unwrap_or_default();
            (out, vec![dirs * hidden], Layout::plain(shape, batch_at))
        };
        self.layer(layer, text, input, stored, layout, &onnx_out);
        if let Some(stmt) = self.stmts.last_mut() {
            stmt.inputs.extend(states);
        }
        Ok(())
    }

    /// The library activation of an ONNX activation node (`LeakyRelu(0.2)`), `None` for
    /// another operator, or why it cannot be expressed. `rank` is the rank of the
    /// node's input; a `Clip`'s bounds are read from its constant inputs.
    fn activation_of(&self, node: &Node, rank: usize) -> Result<Option<String>, Reason> {
        Ok(Some(match node.op.as_str() {
            "Relu" => String::from("Relu"),
            "Sigmoid" => String::from("Sigmoid"),
            "Tanh" => String::from("Tanh"),
            "LeakyRelu" => format!("LeakyRelu({})", float(node.float("alpha", 0.01))),
            "Elu" => format!("Elu({})", float(node.float("alpha", 1.0))),
            "Gelu" => {
                if node.text("approximate").is_some_and(|a| a != "none") {
                    return Err(String::from("the tanh approximation of GELU; the library's `Gelu` is exact (erf)"));
                }
                String::from("Gelu")
            }
            "Softmax" => {
                let axis = node.int("axis", -1);
                if axis != -1 && axis != rank as i64 - 1 {
                    return Err(format!("a softmax over axis {axis}; the library's `Softmax` is over the last axis"));
                }
                String::from("Softmax")
            }
            "Clip" => {
                let min = self.clip_bound(node, 1, "min", f32::NEG_INFINITY)?;
                let max = self.clip_bound(node, 2, "max", f32::INFINITY)?;
                if min == 0.0 && max == f32::INFINITY {
                    String::from("Relu")
                } else if min == 0.0 && max == 6.0 {
                    String::from("Relu6")
                } else {
                    return Err(format!(
                        "a clip to [{min}, {max}]; the library clips to [0, inf] (`Relu`) and [0, 6] (`Relu6`) only"
                    ));
                }
            }
            // `torch.clamp(x, min=0)`: the larger of a value and a constant 0.
            "Max" => {
                let constant: Vec<&Constant> = node.inputs.iter().filter_map(|i| self.constant(i)).collect();
                match (node.inputs.len(), &constant[..]) {
                    (2, [bound]) if bound.floats() == [0.0] => String::from("Relu"),
                    _ => {
                        return Err(String::from(
                            "a maximum other than of one value and the constant 0 (`Relu`); the library has no \
                             elementwise maximum",
                        ))
                    }
                }
            }
            _ => return Ok(None),
        }))
    }

    /// A bound of a `Clip`: the constant input `index` (opset 11 on), else the
    /// attribute `name` (before opset 11), else `default` (unbounded).
    fn clip_bound(&self, node: &Node, index: usize, name: &str, default: f32) -> Result<f32, Reason> {
        if node.input(index).is_none() {
            return Ok(node.float(name, default));
        }
        match self.const_input(node, index, name)?.floats()[..] {
            [bound] => Ok(bound),
            ref other => Err(format!("its {name} has {} values, not one", other.len())),
        }
    }
}

/// The strides, symmetric paddings and dilations of a convolution or pooling.
struct Geometry {
    stride: Vec<usize>,
    padding: Vec<usize>,
    dilation: Vec<usize>,
    same: bool,
}

impl Geometry {
    fn read(node: &Node, kernel: &[usize], spatial: &[usize]) -> Result<Geometry, Reason> {
        let axes = kernel.len();
        let list = |name: &str, default: usize| -> Vec<usize> {
            node.ints(name)
                .map(|v| v.iter().map(|&x| usize::try_from(x).unwrap_or(0)).collect())
                .unwrap_or_else(|| vec![default; axes])
        };
        let stride = list("strides", 1);
        let dilation = list("dilations", 1);
        // Absent pads are zero at both ends of every axis.
        let pads = node
            .ints("pads")
            .map_or_else(|| vec![0; 2 * axes], |v| v.iter().map(|&x| usize::try_from(x).unwrap_or(0)).collect());
        if stride.len() != axes || dilation.len() != axes || pads.len() != 2 * axes || spatial.len() != axes {
            return Err(String::from("its strides, dilations or pads do not have one value per axis"));
        }
        if stride.contains(&0) || dilation.contains(&0) || kernel.contains(&0) {
            return Err(format!("a stride {stride:?}, dilation {dilation:?} or kernel {kernel:?} of 0"));
        }
        let auto_pad = node.text("auto_pad").unwrap_or("NOTSET");
        let (padding, same) = match auto_pad {
            "NOTSET" | "" => {
                if pads[..axes] != pads[axes..] {
                    return Err(format!(
                        "asymmetric padding {pads:?}; the library pads both sides of an axis by the same amount"
                    ));
                }
                (pads[..axes].to_vec(), false)
            }
            "VALID" => (vec![0; axes], false),
            _ => {
                let odd = kernel.iter().zip(&dilation).all(|(&k, &d)| (d * (k - 1)) % 2 == 0);
                if stride.iter().any(|&s| s != 1) || !odd {
                    return Err(format!("`auto_pad = {auto_pad}` with a stride or an even kernel"));
                }
                (kernel.iter().zip(&dilation).map(|(&k, &d)| d * (k - 1) / 2).collect(), true)
            }
        };
        for i in 0..axes {
            if spatial[i] + 2 * padding[i] < dilation[i] * (kernel[i] - 1) + 1 {
                return Err(format!("its window is larger than the padded input {spatial:?}"));
            }
        }
        Ok(Geometry { stride, padding, dilation, same })
    }

    fn output(&self, spatial: &[usize], kernel: &[usize]) -> Vec<usize> {
        (0..kernel.len())
            .map(|i| (spatial[i] + 2 * self.padding[i] - self.dilation[i] * (kernel[i] - 1) - 1) / self.stride[i] + 1)
            .collect()
    }

    /// The options of a convolution that differ from the defaults.
    fn options(&self, options: &mut Vec<String>, conv: bool) {
        if self.stride.iter().any(|&s| s != 1) {
            options.push(format!("stride: {}", sizes(&self.stride)));
        }
        if self.same && conv {
            options.push(String::from("padding: Same"));
        } else if self.padding.iter().any(|&p| p != 0) {
            options.push(format!("padding: {}", sizes(&self.padding)));
        }
        if self.dilation.iter().any(|&d| d != 1) {
            options.push(format!("dilation: {}", sizes(&self.dilation)));
        }
    }
}

/// `3` when every axis has the same value, else `[3, 2]`.
fn sizes(values: &[usize]) -> String {
    match values {
        [first, rest @ ..] if rest.iter().all(|v| v == first) => first.to_string(),
        _ => dims(values),
    }
}

/// `[16, 4, 4]`.
pub(crate) fn dims(values: &[usize]) -> String {
    format!("[{}]", values.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "))
}

/// A float literal the macro reads back as the same `f32`.
pub(crate) fn float(value: f32) -> String {
    let text = format!("{value:?}");
    if text.contains('.') || text.contains('e') {
        text
    } else {
        format!("{text}.0")
    }
}

/// The shape a `Reshape` to `target` gives `old` (0 copies, -1 infers).
pub(crate) fn resolve_reshape(old: &[usize], target: &[i64]) -> Result<Vec<usize>, Reason> {
    let total = elements(old);
    let mut shape = Vec::with_capacity(target.len());
    let mut infer = None;
    for (i, &t) in target.iter().enumerate() {
        shape.push(match t {
            0 => *old.get(i).ok_or("a 0 in the target shape past the input's rank")?,
            -1 if infer.is_none() => {
                infer = Some(i);
                1
            }
            t if t > 0 => t as usize,
            _ => return Err(format!("the target shape {target:?} is not valid")),
        });
    }
    if let Some(i) = infer {
        let known = elements(&shape);
        if known == 0 || !total.is_multiple_of(known) {
            return Err(format!("the target shape {target:?} does not fit {old:?}"));
        }
        shape[i] = total / known;
    }
    if elements(&shape) != total {
        return Err(format!("the target shape {target:?} does not hold the {total} values of {old:?}"));
    }
    Ok(shape)
}
