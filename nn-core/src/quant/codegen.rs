//! A quantized network as Rust source: its constants as `static` arrays in flash and
//! an [`Int8Sequential`](super::sequential::Int8Sequential) over them, checked at
//! compile time by [`Int8Sequential::validate`](super::sequential::Int8Sequential::validate)
//! (shapes from layer to layer, weight, bias and multiplier counts, zero points,
//! scales, clamps). A firmware `include!`s or `#[path]`-includes the file written once
//! on the host, so that the int8 constants are baked in as `include_weights!` bakes
//! f32 ones, and a file edited into an impossible network does not build.
//!
//! The module defines `MODEL` and the constants `INPUT_LEN`, `OUTPUT_LEN`,
//! `ACTIVATION_LEN` (bytes of each of the two activation buffers) and `PARAM_BYTES`.
//! A graph network with `add` and `concat` ([`QuantizedGraph::rust_source`]) becomes
//! the same kind of module over an [`Int8Graph`](super::graph::Int8Graph), with
//! `ARENA_LEN` (bytes of its one arena) in place of `ACTIVATION_LEN`.

use alloc::format;
use alloc::string::String;
use core::fmt::{Display, Write};

use super::network::{QuantizedGraph, QuantizedStep};
use super::quantize::{QuantizedLayer, QuantizedSequential};
use super::sequential::TensorQuantization;
use super::{AddParams, ConvParams, FullyConnectedParams, PoolParams, QuantizedMultiplier};

/// Values per line of an array.
const PER_LINE: usize = 24;

/// `static NAME: [TYPE; N] = [...];` with `PER_LINE` values a line.
fn array<T: Display>(out: &mut String, name: &str, ty: &str, values: &[T]) {
    let _ = writeln!(out, "static {name}: [{ty}; {}] = [", values.len());
    for line in values.chunks(PER_LINE) {
        let items: alloc::vec::Vec<String> = line.iter().map(|v| format!("{v}")).collect();
        let _ = writeln!(out, "    {},", items.join(", "));
    }
    out.push_str("];\n");
}

fn multipliers(out: &mut String, name: &str, values: &[QuantizedMultiplier]) {
    let _ = writeln!(out, "static {name}: [QuantizedMultiplier; {}] = [", values.len());
    for m in values {
        let _ = writeln!(out, "    QuantizedMultiplier {{ multiplier: {}, shift: {} }},", m.multiplier, m.shift);
    }
    out.push_str("];\n");
}

fn quantization(q: &TensorQuantization) -> String {
    format!(
        "TensorQuantization {{ scale: f32::from_bits(0x{:08x}), zero_point: {} }} /* scale {:e} */",
        q.scale.to_bits(),
        q.zero_point,
        q.scale
    )
}

fn fully_connected_params(p: &FullyConnectedParams) -> String {
    format!(
        "FullyConnectedParams {{ input_offset: {}, filter_offset: {}, output_offset: {}, activation_min: {}, \
         activation_max: {}, rounding: Rounding::{:?} }}",
        p.input_offset, p.filter_offset, p.output_offset, p.activation_min, p.activation_max, p.rounding
    )
}

fn conv_params(p: &ConvParams) -> String {
    let g = &p.geometry;
    format!(
        "ConvParams {{\n            geometry: ConvGeometry {{ channels: {}, height: {}, width: {}, kernel: {:?}, \
         stride: {:?}, padding: {:?}, dilation: {:?}, out_height: {}, out_width: {} }},\n            filters: {}, \
         groups: {}, input_offset: {}, output_offset: {}, activation_min: {}, activation_max: {}, rounding: \
         Rounding::{:?},\n        }}",
        g.channels,
        g.height,
        g.width,
        g.kernel,
        g.stride,
        g.padding,
        g.dilation,
        g.out_height,
        g.out_width,
        p.filters,
        p.groups,
        p.input_offset,
        p.output_offset,
        p.activation_min,
        p.activation_max,
        p.rounding
    )
}

fn pool_params(p: &PoolParams) -> String {
    let g = &p.geometry;
    format!(
        "PoolParams {{ geometry: PoolGeometry {{ height: {}, width: {}, size: {:?}, stride: {:?}, padding: {:?}, \
         out_height: {}, out_width: {} }}, activation_min: {}, activation_max: {} }}",
        g.height, g.width, g.size, g.stride, g.padding, g.out_height, g.out_width, p.activation_min, p.activation_max
    )
}

/// Writes the constants of `layer` (number `l`) to `out` as `static`s and returns the
/// `Int8Layer` expression over them.
fn layer_source(out: &mut String, l: usize, layer: &QuantizedLayer) -> String {
    match layer {
        QuantizedLayer::Dense { params, weight, bias, multipliers: m, .. } => {
            array(out, &format!("WEIGHT_{l}"), "i8", weight);
            array(out, &format!("BIAS_{l}"), "i32", bias);
            multipliers(out, &format!("MULTIPLIERS_{l}"), m);
            format!(
                "Int8Layer::Dense {{\n        params: {},\n        inputs: {},\n        outputs: {},\n        \
                 weight: &WEIGHT_{l},\n        bias: &BIAS_{l},\n        multipliers: &MULTIPLIERS_{l},\n    }}",
                fully_connected_params(params),
                weight.len() / bias.len().max(1),
                bias.len()
            )
        }
        QuantizedLayer::Conv2d { params, weight, bias, multipliers: m, .. } => {
            array(out, &format!("WEIGHT_{l}"), "i8", weight);
            array(out, &format!("BIAS_{l}"), "i32", bias);
            multipliers(out, &format!("MULTIPLIERS_{l}"), m);
            format!(
                "Int8Layer::Conv2d {{\n        params: {},\n        weight: &WEIGHT_{l},\n        \
                 bias: &BIAS_{l},\n        multipliers: &MULTIPLIERS_{l},\n    }}",
                conv_params(params)
            )
        }
        QuantizedLayer::MaxPool2d { params, channels } | QuantizedLayer::AveragePool2d { params, channels } => {
            let kind = if matches!(layer, QuantizedLayer::MaxPool2d { .. }) { "MaxPool2d" } else { "AveragePool2d" };
            format!(
                "Int8Layer::{kind} {{\n        params: {},\n        channels: {channels},\n    }}",
                pool_params(params)
            )
        }
    }
}

/// The `use` lines for layers with convolutions, Dense layers and poolings among them,
/// `extra` named from `nn_core::quant` too: only what the module uses, since firmware
/// builds with `-D warnings`.
fn imports(out: &mut String, conv: bool, dense: bool, pool: bool, extra: &[&str]) {
    if conv {
        out.push_str("use nn_core::quant::ConvGeometry;\n");
    }
    if pool {
        out.push_str("use nn_core::quant::PoolGeometry;\n");
    }
    let mut names = alloc::vec::Vec::new();
    names.extend_from_slice(extra);
    if conv {
        names.push("ConvParams");
    }
    if dense {
        names.push("FullyConnectedParams");
    }
    if pool {
        names.push("PoolParams");
    }
    if conv || dense || extra.contains(&"AddParams") {
        names.extend(["QuantizedMultiplier", "Rounding"]);
    }
    names.sort_unstable();
    let _ = writeln!(out, "use nn_core::quant::{{{}}};\n", names.join(", "));
}

/// The header as `//!` lines.
fn header_lines(out: &mut String, header: &str) {
    for line in header.lines() {
        let _ = writeln!(out, "//!{}{line}", if line.is_empty() { "" } else { " " });
    }
}

fn add_params(p: &AddParams) -> String {
    let m =
        |m: &QuantizedMultiplier| format!("QuantizedMultiplier {{ multiplier: {}, shift: {} }}", m.multiplier, m.shift);
    format!(
        "AddParams {{\n            input1_offset: {}, input2_offset: {}, output_offset: {}, left_shift: {},\n            \
         input1_multiplier: {},\n            input2_multiplier: {},\n            output_multiplier: {},\n            \
         activation_min: {}, activation_max: {}, rounding: Rounding::{:?},\n        }}",
        p.input1_offset,
        p.input2_offset,
        p.output_offset,
        p.left_shift,
        m(&p.input1_multiplier),
        m(&p.input2_multiplier),
        m(&p.output_multiplier),
        p.activation_min,
        p.activation_max,
        p.rounding
    )
}

impl QuantizedSequential {
    /// The network as the text of a Rust module (see the [module](crate::quant::codegen) documentation),
    /// headed by `header` as `//!` lines. The module uses `nn_core` by that name.
    pub fn rust_source(&self, header: &str) -> String {
        let mut out = String::new();
        for line in header.lines() {
            let _ = writeln!(out, "//!{}{line}", if line.is_empty() { "" } else { " " });
        }
        // Only the imports the layers use: the firmware builds with `-D warnings`.
        let has = |f: fn(&QuantizedLayer) -> bool| self.layers.iter().any(f);
        let conv = has(|l| matches!(l, QuantizedLayer::Conv2d { .. }));
        let dense = has(|l| matches!(l, QuantizedLayer::Dense { .. }));
        let pool = has(|l| matches!(l, QuantizedLayer::MaxPool2d { .. } | QuantizedLayer::AveragePool2d { .. }));
        out.push('\n');
        if conv {
            out.push_str("use nn_core::quant::ConvGeometry;\n");
        }
        if pool {
            out.push_str("use nn_core::quant::PoolGeometry;\n");
        }
        out.push_str("use nn_core::quant::sequential::{Int8Layer, Int8Sequential, TensorQuantization};\n");
        let mut names = alloc::vec::Vec::new();
        if conv {
            names.push("ConvParams");
        }
        if dense {
            names.push("FullyConnectedParams");
        }
        if pool {
            names.push("PoolParams");
        }
        if conv || dense {
            names.extend(["QuantizedMultiplier", "Rounding"]);
        }
        let _ = writeln!(out, "use nn_core::quant::{{{}}};\n", names.join(", "));
        let mut layers = String::new();
        for (l, layer) in self.layers.iter().enumerate() {
            let _ = writeln!(layers, "    {},", layer_source(&mut out, l, layer));
        }
        let _ = write!(
            out,
            "\n/// The network: its input's quantization, its layers, its output's quantization.\n\
             pub static MODEL: Int8Sequential<'static> = Int8Sequential {{\n    input: {},\n    output: {},\n    \
             layers: &[\n{layers}    ],\n}};\n\n\
             // Fails the build, naming the rule, if the network could not run.\n\
             const _: () = if let Err(e) = MODEL.validate() {{\n    panic!(\"{{}}\", e)\n}};\n\n\
             /// int8 values per input sample.\npub const INPUT_LEN: usize = MODEL.input_len();\n\
             /// int8 values per output sample.\npub const OUTPUT_LEN: usize = MODEL.output_len();\n\
             /// Bytes of each of the two activation buffers of `MODEL.forward`.\n\
             pub const ACTIVATION_LEN: usize = MODEL.activation_len();\n\
             /// Bytes of the constants (1 a weight, 4 a bias, 8 a multiplier, 16 for the two quantizations).\n\
             pub const PARAM_BYTES: usize = MODEL.param_bytes();\n",
            quantization(&self.input),
            quantization(&self.output()),
        );
        out
    }
}

impl QuantizedGraph {
    /// The graph network as the text of a Rust module, headed by `header` as `//!`
    /// lines: its constants as `static`s and `MODEL`, an
    /// [`Int8Graph`](super::graph::Int8Graph) over them checked at compile time by
    /// [`Int8Graph::validate`](super::graph::Int8Graph::validate); with `INPUT_LEN`,
    /// `OUTPUT_LEN`, `ARENA_LEN` (bytes of the arena of `MODEL.forward`) and
    /// `PARAM_BYTES`. A value no step writes (one that shares another's: a flatten, a
    /// fused activation) takes no arena. The module uses `nn_core` by that name.
    pub fn rust_source(&self, header: &str) -> String {
        let mut out = String::new();
        header_lines(&mut out, header);
        let layer = |f: fn(&QuantizedLayer) -> bool| {
            self.steps.iter().any(|s| matches!(s, QuantizedStep::Layer { layer, .. } if f(layer)))
        };
        let conv = layer(|l| matches!(l, QuantizedLayer::Conv2d { .. }));
        let dense = layer(|l| matches!(l, QuantizedLayer::Dense { .. }));
        let pool = layer(|l| matches!(l, QuantizedLayer::MaxPool2d { .. } | QuantizedLayer::AveragePool2d { .. }));
        let has_add = self.steps.iter().any(|s| matches!(s, QuantizedStep::Add { .. }));
        out.push('\n');
        let mut graph = alloc::vec!["Int8Graph", "Int8Step"];
        graph.sort_unstable();
        let _ = writeln!(out, "use nn_core::quant::graph::{{{}}};", graph.join(", "));
        let sequential = if conv || dense || pool { "Int8Layer, TensorQuantization" } else { "TensorQuantization" };
        let sequential = if sequential.contains(',') { format!("{{{sequential}}}") } else { sequential.into() };
        let _ = writeln!(out, "use nn_core::quant::sequential::{sequential};");
        imports(&mut out, conv, dense, pool, if has_add { &["AddParams"] } else { &[] });
        let mut steps = String::new();
        for (s, step) in self.steps.iter().enumerate() {
            match step {
                QuantizedStep::Layer { layer, input, output, .. } => {
                    let text = layer_source(&mut out, s, layer);
                    let _ = writeln!(
                        steps,
                        "    Int8Step::Layer {{\n        layer: {},\n        input: {input},\n        output: {output},\n    }},",
                        text.replace("\n", "\n    ")
                    );
                }
                QuantizedStep::Add { params, inputs: [a, b], output } => {
                    let _ = writeln!(
                        steps,
                        "    Int8Step::Add {{\n        params: {},\n        inputs: [{a}, {b}],\n        output: {output},\n    }},",
                        add_params(params)
                    );
                }
                QuantizedStep::Concat { inputs, output } => {
                    array(&mut out, &format!("CONCAT_{s}"), "usize", inputs);
                    let _ = writeln!(steps, "    Int8Step::Concat {{ inputs: &CONCAT_{s}, output: {output} }},");
                }
            }
        }
        // Only the input and the values steps write take room in the arena.
        let lens: alloc::vec::Vec<usize> = (0..self.lens.len())
            .map(|v| {
                let written = v == self.input
                    || self.steps.iter().any(|s| match s {
                        QuantizedStep::Layer { output, .. }
                        | QuantizedStep::Add { output, .. }
                        | QuantizedStep::Concat { output, .. } => *output == v,
                    });
                if written {
                    self.lens[v]
                } else {
                    0
                }
            })
            .collect();
        array(&mut out, "LENS", "usize", &lens);
        let _ = write!(
            out,
            "\n/// The network: its input's and output's quantization and values, the elements of every \
             value, its steps.\n\
             pub static MODEL: Int8Graph<'static> = Int8Graph {{\n    input: {},\n    output: {},\n    \
             input_value: {},\n    output_value: {},\n    lens: &LENS,\n    steps: &[\n{steps}    ],\n}};\n\n\
             // Fails the build, naming the rule, if the network could not run.\n\
             const _: () = if let Err(e) = MODEL.validate() {{\n    panic!(\"{{}}\", e)\n}};\n\n\
             /// int8 values per input sample.\npub const INPUT_LEN: usize = MODEL.input_len();\n\
             /// int8 values per output sample.\npub const OUTPUT_LEN: usize = MODEL.output_len();\n\
             /// Bytes of the arena of `MODEL.forward`.\n\
             pub const ARENA_LEN: usize = MODEL.arena_len();\n\
             /// Bytes of the constants (1 a weight, 4 a bias, 8 a multiplier, 40 an add, 16 for the two \
             quantizations).\n\
             pub const PARAM_BYTES: usize = MODEL.param_bytes();\n",
            quantization(&self.quantization[self.input]),
            quantization(&self.quantization[self.output]),
            self.input,
            self.output,
        );
        out
    }
}
