//! The importer's errors: a model it cannot read, and a model it can read but whose
//! nodes the library cannot express, listed all at once.
use std::fmt;

/// Why a model was not imported.
#[derive(Debug)]
pub enum ImportError {
    /// The file could not be read or written.
    Io {
        /// The file.
        path: String,
        /// What failed.
        message: String,
    },
    /// The bytes are not an ONNX model the importer can decode.
    Parse(String),
    /// An option is wrong (an `--input-shape` naming no input, a bad network name).
    Options(String),
    /// Graph inputs with dimensions that are not fixed, other than the batch axis.
    DynamicShape(Vec<DynamicDim>),
    /// Every node the library cannot express, in graph order.
    Unsupported(Vec<Unsupported>),
    /// The weights could not be written as safetensors (two tensors of one name).
    Weights(String),
}

/// A dimension of a graph input that must be fixed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DynamicDim {
    /// The input's name.
    pub input: String,
    /// The dimension's index (0 is the batch axis; 1 for a recurrent initial state).
    pub axis: usize,
    /// The input's declared shape, dynamic dimensions by name (`[batch, 3, height, 32]`).
    pub declared: String,
}

/// One node the library cannot express.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unsupported {
    /// The ONNX operator (`Resize`).
    pub op: String,
    /// The node's ONNX name.
    pub node: String,
    /// The shapes of its inputs, batch axis included (`[1, 16, 8, 8]`; `?` where
    /// not known).
    pub input_shapes: Vec<String>,
    /// Why, and what would work instead where there is something.
    pub reason: String,
}

impl fmt::Display for Unsupported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let node = if self.node.is_empty() { String::from("(unnamed)") } else { format!("`{}`", self.node) };
        write!(f, "{} {node}, inputs {}: {}", self.op, self.input_shapes.join(", "), self.reason)
    }
}

impl fmt::Display for ImportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImportError::Io { path, message } => write!(f, "{path}: {message}"),
            ImportError::Parse(message) => write!(f, "not a readable ONNX model: {message}"),
            ImportError::Options(message) => write!(f, "{message}"),
            ImportError::Weights(message) => write!(f, "the weights cannot be written as safetensors: {message}"),
            ImportError::DynamicShape(dims) => {
                writeln!(f, "the model's input shapes must be fixed except for the batch axis:")?;
                for d in dims {
                    writeln!(
                        f,
                        "  input `{}` {}: dimension {} is not fixed; give it with `--input-shape {}=...`",
                        d.input, d.declared, d.axis, d.input
                    )?;
                }
                write!(f, "(`--input-shape NAME=1,3,32,32` fixes every dimension of input NAME, batch first)")
            }
            ImportError::Unsupported(nodes) => {
                writeln!(f, "{} node(s) of the model have no equivalent in the library:", nodes.len())?;
                for (i, node) in nodes.iter().enumerate() {
                    write!(f, "  {node}")?;
                    if i + 1 < nodes.len() {
                        writeln!(f)?;
                    }
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for ImportError {}
