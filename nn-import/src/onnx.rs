//! The ONNX model as the importer needs it: nodes with their attributes, constant
//! tensors (initializers and `Constant` nodes) as `f32` or `i64` values, and the
//! declared shapes of the graph's inputs, outputs and intermediate values.
//!
//! The protobuf decoding is `onnx-ir`'s (`onnx_ir::ModelProto`, generated from
//! `onnx.proto`); this module only copies out the fields the conversion reads.
use std::collections::HashMap;

use onnx_ir::{AttributeProto, Message, ModelProto, TensorProto, ValueInfoProto};

use crate::error::ImportError;

/// One attribute value.
#[derive(Clone, Debug)]
pub(crate) enum Attr {
    Int(i64),
    Float(f32),
    Ints(Vec<i64>),
    Floats(Vec<f32>),
    Text(String),
    Texts(Vec<String>),
    Tensor(Constant),
    /// A graph or another kind the importer never reads.
    Other,
}

/// A node of the graph.
#[derive(Clone, Debug)]
pub(crate) struct Node {
    /// The node's ONNX name (may be empty).
    pub name: String,
    pub op: String,
    pub domain: String,
    /// Input value names; an empty name is an omitted optional input.
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
    pub attrs: HashMap<String, Attr>,
}

impl Node {
    pub(crate) fn int(&self, name: &str, default: i64) -> i64 {
        match self.attrs.get(name) {
            Some(Attr::Int(v)) => *v,
            _ => default,
        }
    }

    pub(crate) fn float(&self, name: &str, default: f32) -> f32 {
        match self.attrs.get(name) {
            Some(Attr::Float(v)) => *v,
            _ => default,
        }
    }

    pub(crate) fn ints(&self, name: &str) -> Option<&[i64]> {
        match self.attrs.get(name) {
            Some(Attr::Ints(v)) => Some(v),
            _ => None,
        }
    }

    pub(crate) fn text(&self, name: &str) -> Option<&str> {
        match self.attrs.get(name) {
            Some(Attr::Text(v)) => Some(v),
            _ => None,
        }
    }

    /// The `index`-th input's name, if given.
    pub(crate) fn input(&self, index: usize) -> Option<&str> {
        self.inputs.get(index).map(String::as_str).filter(|name| !name.is_empty())
    }
}

/// A constant tensor.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Constant {
    pub shape: Vec<usize>,
    pub data: ConstantData,
}

/// A constant's values.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum ConstantData {
    F32(Vec<f32>),
    I64(Vec<i64>),
}

impl Constant {
    /// The values as `f32` (integers converted).
    pub(crate) fn floats(&self) -> Vec<f32> {
        match &self.data {
            ConstantData::F32(v) => v.clone(),
            ConstantData::I64(v) => v.iter().map(|&x| x as f32).collect(),
        }
    }

    /// The values as integers, for an integer tensor.
    pub(crate) fn ints(&self) -> Option<&[i64]> {
        match &self.data {
            ConstantData::I64(v) => Some(v),
            ConstantData::F32(_) => None,
        }
    }
}

/// A dimension of a declared shape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Dim {
    Fixed(usize),
    /// A named or unknown dimension (`batch`, `?`).
    Dynamic(String),
}

impl std::fmt::Display for Dim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Dim::Fixed(n) => write!(f, "{n}"),
            Dim::Dynamic(name) if name.is_empty() => write!(f, "?"),
            Dim::Dynamic(name) => write!(f, "{name}"),
        }
    }
}

/// A graph input or output: its name, element type and declared shape.
#[derive(Clone, Debug)]
pub(crate) struct ValueInfo {
    pub name: String,
    /// ONNX's element type code (1 float, 7 int64).
    pub elem_type: i32,
    pub dims: Option<Vec<Dim>>,
}

/// The parts of a model the conversion reads.
#[derive(Clone, Debug)]
pub(crate) struct Graph {
    pub nodes: Vec<Node>,
    /// Initializers and the outputs of `Constant` nodes.
    pub constants: HashMap<String, Constant>,
    /// The graph inputs that are not initializers.
    pub inputs: Vec<ValueInfo>,
    pub outputs: Vec<ValueInfo>,
    /// Declared shapes of intermediate values (ONNX shape inference), for messages.
    pub value_info: HashMap<String, ValueInfo>,
}

const FLOAT: i32 = 1;
const INT32: i32 = 6;
const INT64: i32 = 7;
const DOUBLE: i32 = 11;

/// Decodes an ONNX model.
pub(crate) fn read(bytes: &[u8]) -> Result<Graph, ImportError> {
    let model = ModelProto::parse_from_bytes(bytes).map_err(|e| ImportError::Parse(e.to_string()))?;
    let Some(graph) = model.graph.as_ref() else {
        return Err(ImportError::Parse(String::from("the model has no graph")));
    };
    let mut constants = HashMap::new();
    for tensor in &graph.initializer {
        constants.insert(tensor.name.to_string(), constant(tensor)?);
    }
    let mut nodes = Vec::new();
    for node in &graph.node {
        let attrs: HashMap<String, Attr> = node
            .attribute
            .iter()
            .map(|a| Ok((a.name.to_string(), attribute(a)?)))
            .collect::<Result<_, ImportError>>()?;
        let op = node.op_type.to_string();
        let outputs: Vec<String> = node.output.iter().map(|s| s.to_string()).collect();
        if op == "Constant" && node.domain.is_empty() {
            let value = match (attrs.get("value"), attrs.get("value_ints"), attrs.get("value_int")) {
                (Some(Attr::Tensor(value)), _, _) => Some(value.clone()),
                (_, Some(Attr::Ints(v)), _) => {
                    Some(Constant { shape: vec![v.len()], data: ConstantData::I64(v.clone()) })
                }
                (_, _, Some(Attr::Int(v))) => Some(Constant { shape: Vec::new(), data: ConstantData::I64(vec![*v]) }),
                _ => match (attrs.get("value_floats"), attrs.get("value_float")) {
                    (Some(Attr::Floats(v)), _) => {
                        Some(Constant { shape: vec![v.len()], data: ConstantData::F32(v.clone()) })
                    }
                    (_, Some(Attr::Float(v))) => {
                        Some(Constant { shape: Vec::new(), data: ConstantData::F32(vec![*v]) })
                    }
                    _ => None,
                },
            };
            if let (Some(value), Some(out)) = (value, outputs.first()) {
                constants.insert(out.clone(), value);
                continue;
            }
        }
        nodes.push(Node {
            name: node.name.to_string(),
            op,
            domain: node.domain.to_string(),
            inputs: node.input.iter().map(|s| s.to_string()).collect(),
            outputs,
            attrs,
        });
    }
    let inputs = graph.input.iter().filter(|v| !constants.contains_key(v.name.as_str())).map(value_info).collect();
    let outputs = graph.output.iter().map(value_info).collect();
    let value_info = graph.value_info.iter().map(|v| (v.name.to_string(), value_info(v))).collect();
    Ok(Graph { nodes, constants, inputs, outputs, value_info })
}

fn value_info(value: &ValueInfoProto) -> ValueInfo {
    let name = value.name.to_string();
    let Some(ty) = value.type_.as_ref().filter(|t| t.has_tensor_type()) else {
        return ValueInfo { name, elem_type: 0, dims: None };
    };
    let tensor = ty.tensor_type();
    let dims = tensor.shape.as_ref().map(|shape| {
        shape
            .dim
            .iter()
            .map(|d| {
                if d.has_dim_value() && d.dim_value() > 0 {
                    Dim::Fixed(d.dim_value() as usize)
                } else {
                    Dim::Dynamic(d.dim_param().to_string())
                }
            })
            .collect()
    });
    ValueInfo { name, elem_type: tensor.elem_type, dims }
}

fn attribute(attr: &AttributeProto) -> Result<Attr, ImportError> {
    use onnx_ir::AttributeType as T;
    Ok(match attr.type_.enum_value() {
        Ok(T::INT) => Attr::Int(attr.i),
        Ok(T::FLOAT) => Attr::Float(attr.f),
        Ok(T::INTS) => Attr::Ints(attr.ints.clone()),
        Ok(T::FLOATS) => Attr::Floats(attr.floats.clone()),
        Ok(T::STRING) => Attr::Text(String::from_utf8_lossy(&attr.s).into_owned()),
        Ok(T::STRINGS) => Attr::Texts(attr.strings.iter().map(|s| String::from_utf8_lossy(s).into_owned()).collect()),
        Ok(T::TENSOR) => match attr.t.as_ref() {
            Some(t) => Attr::Tensor(constant(t)?),
            None => Attr::Other,
        },
        _ => Attr::Other,
    })
}

/// The values of a tensor stored in the model.
fn constant(tensor: &TensorProto) -> Result<Constant, ImportError> {
    let name = tensor.name.to_string();
    let shape = tensor
        .dims
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| ImportError::Parse(format!("tensor `{name}` has dimension {d}"))))
        .collect::<Result<Vec<usize>, _>>()?;
    let count = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    let count = count.ok_or_else(|| ImportError::Parse(format!("tensor `{name}` has too many elements")))?;
    let raw: &[u8] = &tensor.raw_data;
    if tensor.data_location.value() == 1 {
        return Err(ImportError::Parse(format!(
            "tensor `{name}` is stored in an external file; save the model with its weights inside \
             (`onnx.save_model(model, path, save_as_external_data=False)`)"
        )));
    }
    let data = match tensor.data_type {
        FLOAT if !raw.is_empty() => {
            ConstantData::F32(raw.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
        }
        FLOAT => ConstantData::F32(tensor.float_data.clone()),
        DOUBLE if !raw.is_empty() => ConstantData::F32(
            raw.chunks_exact(8)
                .map(|b| f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f32)
                .collect(),
        ),
        DOUBLE => ConstantData::F32(tensor.double_data.iter().map(|&v| v as f32).collect()),
        INT64 if !raw.is_empty() => ConstantData::I64(
            raw.chunks_exact(8).map(|b| i64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])).collect(),
        ),
        INT64 => ConstantData::I64(tensor.int64_data.clone()),
        INT32 if !raw.is_empty() => ConstantData::I64(
            raw.chunks_exact(4).map(|b| i64::from(i32::from_le_bytes([b[0], b[1], b[2], b[3]]))).collect(),
        ),
        INT32 => ConstantData::I64(tensor.int32_data.iter().map(|&v| i64::from(v)).collect()),
        other => {
            return Err(ImportError::Parse(format!(
                "tensor `{name}` has element type {other}; the importer reads float, double, int32 and int64 tensors"
            )))
        }
    };
    let len = match &data {
        ConstantData::F32(v) => v.len(),
        ConstantData::I64(v) => v.len(),
    };
    if len != count {
        return Err(ImportError::Parse(format!("tensor `{name}` of shape {shape:?} holds {len} values, not {count}")));
    }
    Ok(Constant { shape, data })
}
