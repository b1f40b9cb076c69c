//! Imports a trained ONNX model as `network!` source and its weights.
//!
//! The importer reads the model (the protobuf decoding is `onnx-ir`'s), follows the
//! graph from its inputs, and writes:
//!
//! - Rust source with one `nn_core::network!` whose layers are the model's operators,
//!   named after their ONNX names (`/fc1/Gemm` or `fc1.weight` give `fc1`): the
//!   sequential form when the graph is a chain, the graph form where values branch and
//!   merge or where the model has several inputs or outputs (a network implementing
//!   `MultiIo`, its inputs and outputs in the graph's order); the parts of an
//!   exported `nn.TransformerEncoderLayer` fold back into one `TransformerEncoderLayer`
//!   (and a chain of them into a `TransformerEncoder`) where they compute exactly it;
//! - the weights as a safetensors file in the library's `state_dict` layout, which
//!   `nn_core::io::load_safetensors` and `nn_core::include_weights!` read.
//!
//! An `LSTM`, `GRU` or `RNN` whose initial state (`initial_h`, `initial_c`) is a graph
//! input becomes a recurrent call with state arguments (`y = lstm(x, h0, c0)`), the
//! state an input of the network of shape `[directions, hidden]` per sample. ONNX
//! holds that input as `[directions, batch, hidden]`, its batch on axis 1; callers
//! holding it in that (PyTorch's) layout convert it with
//! `nn_core::layers::state_from_pytorch`. A constant non-zero initial state is
//! reported as unsupported (make it an input of the model).
//!
//! A model the library cannot express is an [`ImportError::Unsupported`] listing
//! every such node (operator, name, input shapes, why); an input whose dimensions
//! other than the batch are not fixed is an [`ImportError::DynamicShape`] naming each
//! one (fix them with [`Options::input_shape`]).
//!
//! From a `build.rs`:
//!
//! ```no_run
//! let options = nn_import::Options::new("DigitNet");
//! let imported = nn_import::import_file("model/digits.onnx".as_ref(), &options)?;
//! let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
//! imported.write(&out.join("digit_net.rs"), &out.join("digit_net.safetensors"))?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
mod attention;
mod convert;
mod emit;
mod encoder;
mod error;
mod eval;
mod layout;
mod names;
mod onnx;
mod safetensors;

use std::path::Path;

pub use convert::Tensor;
pub use error::{DynamicDim, ImportError, Unsupported};

use onnx::Dim;

/// How to import.
#[derive(Clone, Debug)]
pub struct Options {
    /// The network's type name (`DigitNet`).
    pub name: String,
    /// Fixed shapes for graph inputs, batch axis first (`("x", [1, 3, 32, 32])`);
    /// a recurrent layer's initial state as ONNX declares it, `[directions, batch,
    /// hidden]`.
    pub input_shapes: Vec<(String, Vec<usize>)>,
    /// The weights file named in the source's doc comment.
    pub weights_name: Option<String>,
}

impl Options {
    /// Options for a network called `name`.
    pub fn new(name: &str) -> Options {
        Options { name: name.to_string(), input_shapes: Vec::new(), weights_name: None }
    }

    /// Fixes the shape of input `input` (batch axis first; a recurrent initial state
    /// `[directions, batch, hidden]`).
    pub fn input_shape(mut self, input: &str, shape: &[usize]) -> Options {
        self.input_shapes.push((input.to_string(), shape.to_vec()));
        self
    }
}

/// An imported model.
#[derive(Clone, Debug)]
pub struct Imported {
    /// The `network!` source.
    pub source: String,
    /// The `state_dict` tensors, in the network's order.
    pub tensors: Vec<Tensor>,
}

impl Imported {
    /// The weights as a safetensors file.
    pub fn safetensors(&self) -> Result<Vec<u8>, ImportError> {
        safetensors::to_bytes(&self.tensors)
    }

    /// Writes the source to `source` and the weights to `weights`, creating their
    /// directories.
    pub fn write(&self, source: &Path, weights: &Path) -> Result<(), ImportError> {
        write_file(source, self.source.as_bytes())?;
        write_file(weights, &self.safetensors()?)
    }
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), ImportError> {
    let io = |e: std::io::Error| ImportError::Io { path: path.display().to_string(), message: e.to_string() };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    std::fs::write(path, bytes).map_err(io)
}

/// Imports the ONNX model in file `path`.
pub fn import_file(path: &Path, options: &Options) -> Result<Imported, ImportError> {
    let bytes = std::fs::read(path)
        .map_err(|e| ImportError::Io { path: path.display().to_string(), message: e.to_string() })?;
    let model = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    import_named(&bytes, &model, options)
}

/// Imports the ONNX model `bytes`.
pub fn import(bytes: &[u8], options: &Options) -> Result<Imported, ImportError> {
    import_named(bytes, "model.onnx", options)
}

fn import_named(bytes: &[u8], model: &str, options: &Options) -> Result<Imported, ImportError> {
    let name = &options.name;
    let valid = name.starts_with(|c: char| c.is_ascii_uppercase()) && name.chars().all(|c| c.is_ascii_alphanumeric());
    if !valid {
        return Err(ImportError::Options(format!("the network name `{name}` is not a CamelCase Rust type name")));
    }
    let graph = onnx::read(bytes)?;
    for (input, _) in &options.input_shapes {
        if !graph.inputs.iter().any(|i| &i.name == input) {
            let names: Vec<&str> = graph.inputs.iter().map(|i| i.name.as_str()).collect();
            return Err(ImportError::Options(format!("`--input-shape {input}=...`: the model's inputs are {names:?}")));
        }
    }
    if graph.inputs.is_empty() {
        return Err(ImportError::Options(String::from("the model has no input that is not a constant")));
    }
    let mut shapes = Vec::new();
    let mut batch_axes = Vec::new();
    let mut dynamic = Vec::new();
    let mut first_batch = None;
    for input in &graph.inputs {
        let batch_axis = usize::from(is_state(&graph, &input.name));
        // Float inputs, or integer token ids (read by an embedding as `f32`).
        if ![0, 1, 6, 7, 11].contains(&input.elem_type) {
            return Err(ImportError::Options(format!(
                "input `{}` has ONNX element type {}; the library's networks read float values",
                input.name, input.elem_type
            )));
        }
        let shape = match options.input_shapes.iter().find(|(n, _)| *n == input.name) {
            Some((_, shape)) => shape.clone(),
            None => match fixed_shape(input, batch_axis) {
                Ok(shape) => shape,
                Err(ImportError::DynamicShape(dims)) => {
                    dynamic.extend(dims);
                    continue;
                }
                Err(e) => return Err(e),
            },
        };
        if shape.len() < 2 || shape.contains(&0) {
            return Err(ImportError::Options(format!(
                "input `{}` has shape {shape:?}; the importer needs a batch axis and at least one sample axis",
                input.name
            )));
        }
        let batch = shape[batch_axis];
        if let Some(first) = first_batch.filter(|&first| first != batch) {
            return Err(ImportError::Options(format!(
                "input `{}` has a batch of {batch} and the first input one of {first}; the inputs share a batch axis",
                input.name
            )));
        }
        first_batch = Some(batch);
        shapes.push(shape);
        batch_axes.push(batch_axis);
    }
    if !dynamic.is_empty() {
        return Err(ImportError::DynamicShape(dynamic));
    }
    let mut converted = convert::convert(&graph, &shapes, &batch_axes).map_err(ImportError::Unsupported)?;
    encoder::fold(&mut converted);
    let producer = producer(bytes);
    let header = emit::Header { name, model, producer: &producer, weights: options.weights_name.as_deref() };
    Ok(Imported { source: emit::source(&converted, &header), tensors: converted.tensors })
}

/// Whether graph input `name` is read only as the initial state (`initial_h`,
/// `initial_c`) of recurrent nodes of ONNX's default layout, whose batch axis is 1,
/// possibly through a `Slice`.
fn is_state(graph: &onnx::Graph, name: &str) -> bool {
    let mut readers = graph.nodes.iter().filter(|n| n.inputs.iter().any(|i| i == name)).peekable();
    readers.peek().is_some()
        && readers.all(|n| match n.op.as_str() {
            "LSTM" | "GRU" | "RNN" => {
                n.int("layout", 0) == 0 && n.inputs.iter().enumerate().all(|(i, v)| v != name || i == 5 || i == 6)
            }
            "Slice" => n.input(0) == Some(name) && n.outputs.first().is_some_and(|o| is_state(graph, o)),
            _ => false,
        })
}

/// The input's declared shape with a dynamic batch axis (`batch_axis`) taken as 1,
/// or every other dynamic dimension.
fn fixed_shape(input: &onnx::ValueInfo, batch_axis: usize) -> Result<Vec<usize>, ImportError> {
    let Some(dims) = &input.dims else {
        return Err(ImportError::DynamicShape(vec![DynamicDim {
            input: input.name.clone(),
            axis: batch_axis,
            declared: String::from("(no shape)"),
        }]));
    };
    let declared = format!("[{}]", dims.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "));
    let mut dynamic = Vec::new();
    let mut shape = Vec::new();
    for (axis, d) in dims.iter().enumerate() {
        match d {
            Dim::Fixed(n) => shape.push(*n),
            Dim::Dynamic(_) if axis == batch_axis => shape.push(1),
            Dim::Dynamic(_) => {
                dynamic.push(DynamicDim { input: input.name.clone(), axis, declared: declared.clone() });
                shape.push(1);
            }
        }
    }
    if dynamic.is_empty() {
        Ok(shape)
    } else {
        Err(ImportError::DynamicShape(dynamic))
    }
}

/// `pytorch 2.15.0`, from the model's header.
fn producer(bytes: &[u8]) -> String {
    use onnx_ir::Message;
    match onnx_ir::ModelProto::parse_from_bytes(bytes) {
        Ok(m) if !m.producer_name.is_empty() => {
            format!("{} {}, opset {}", m.producer_name, m.producer_version, opset(&m)).trim().to_string()
        }
        Ok(m) => format!("opset {}", opset(&m)),
        Err(_) => String::new(),
    }
}

fn opset(model: &onnx_ir::ModelProto) -> i64 {
    model
        .opset_import
        .iter()
        .filter(|o| o.domain.is_empty() || o.domain == "ai.onnx")
        .map(|o| o.version)
        .max()
        .unwrap_or(0)
}

/// The names of the graph inputs (initializers excluded) of the model in `path`.
pub fn input_names(path: &Path) -> Result<Vec<String>, ImportError> {
    let bytes = std::fs::read(path)
        .map_err(|e| ImportError::Io { path: path.display().to_string(), message: e.to_string() })?;
    Ok(onnx::read(&bytes)?.inputs.into_iter().map(|i| i.name).collect())
}
