//! Rust identifiers from ONNX names: `/encoder/fc1/Gemm` and `encoder.fc1.weight`
//! become `encoder_fc1`, unique within the network.
use std::collections::HashSet;

/// The names given so far, layers and values apart.
#[derive(Default, Debug)]
pub(crate) struct Names {
    layers: HashSet<String>,
    values: HashSet<String>,
}

/// Rust's keywords, which a name may not be.
const KEYWORDS: &[&str] = &[
    "as", "async", "await", "break", "const", "continue", "crate", "dyn", "else", "enum", "extern", "false", "fn",
    "for", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub", "ref", "return", "self", "Self",
    "static", "struct", "super", "trait", "true", "type", "unsafe", "use", "where", "while", "abstract", "become",
    "box", "do", "final", "gen", "macro", "override", "priv", "try", "typeof", "unsized", "virtual", "yield", "input",
    "output", "graph",
];

/// Operator names that end an ONNX node name (`/fc1/Gemm`) and say nothing about
/// the layer.
fn is_operator_suffix(part: &str) -> bool {
    crate::convert::OPERATORS.iter().any(|op| op.eq_ignore_ascii_case(part))
}

/// A snake_case identifier from `source`, or `fallback` if nothing is left.
pub(crate) fn identifier(source: &str, fallback: &str) -> String {
    // Drop a trailing operator component (`/fc1/Gemm` -> `/fc1`).
    // The exporter's `node_` prefix (`node_linear_1`).
    let source = source.strip_prefix("node_").unwrap_or(source);
    let trimmed = match source.rsplit_once('/') {
        Some((head, last)) if is_operator_suffix(last) || last.starts_with(|c: char| c.is_ascii_uppercase()) => head,
        _ => source,
    };
    let mut out = String::new();
    let mut last_underscore = true;
    let mut previous_lower = false;
    for c in trimmed.chars() {
        if c.is_ascii_alphanumeric() {
            if c.is_ascii_uppercase() && previous_lower && !last_underscore {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
            last_underscore = false;
            previous_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        } else if !last_underscore {
            out.push('_');
            last_underscore = true;
            previous_lower = false;
        }
    }
    let mut out = out.trim_matches('_').to_string();
    if out.is_empty() {
        out = fallback.to_string();
    }
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out = format!("{fallback}_{out}");
    }
    if KEYWORDS.contains(&out.as_str()) {
        out.push('_');
    }
    out
}

fn unique(taken: &mut HashSet<String>, base: String) -> String {
    let mut name = base.clone();
    let mut n = 2;
    while taken.contains(&name) {
        name = format!("{base}_{n}");
        n += 1;
    }
    taken.insert(name.clone());
    name
}

impl Names {
    /// A new layer name from an ONNX name.
    pub(crate) fn layer(&mut self, source: &str, fallback: &str) -> String {
        unique(&mut self.layers, identifier(source, fallback))
    }

    /// A new value name from an ONNX name.
    pub(crate) fn value(&mut self, source: &str, fallback: &str) -> String {
        unique(&mut self.values, identifier(source, fallback))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn onnx_names_become_identifiers() {
        assert_eq!(identifier("/fc1/Gemm", "dense"), "fc1");
        assert_eq!(identifier("encoder.fc1", "dense"), "encoder_fc1");
        assert_eq!(identifier("/layer1/conv/Conv", "conv"), "layer1_conv");
        assert_eq!(identifier("node_Relu_3", "relu"), "relu_3");
        assert_eq!(identifier("node_lstm__2", "lstm"), "lstm_2");
        assert_eq!(identifier("", "relu"), "relu");
        assert_eq!(identifier("0", "dense"), "dense_0");
        assert_eq!(identifier("type", "dense"), "type_");
        assert_eq!(identifier("onnx::Gemm_12", "dense"), "onnx_gemm_12");
        let mut names = Names::default();
        assert_eq!(names.layer("fc", "d"), "fc");
        assert_eq!(names.layer("fc", "d"), "fc_2");
        assert_eq!(names.value("fc", "d"), "fc");
    }
}
