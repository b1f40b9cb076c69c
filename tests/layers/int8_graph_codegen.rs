//! A quantized graph network (`add` and `concat`) as generated Rust source: the module
//! `QuantizedGraph::rust_source` writes (committed as `int8_graph_generated.rs`,
//! compiled here as it would be in a firmware) computes the same int8 outputs as the
//! `QuantizedGraph` it was written from, bit for bit.
//!
//! After a change to the generator or the quantizer, rewrite the module with
//! `NN_WRITE_GENERATED=1 cargo test --test layers int8_graph_codegen` and read the diff.
use nn_core::prelude::*;
use nn_core::quant::calibrate::QuantizeOptions;
use nn_core::quant::network::Quantize;

/// The generated module.
#[rustfmt::skip]
#[path = "int8_graph_generated.rs"]
mod generated;

/// The digest the firmware checks too.
#[path = "int8_graph_check.rs"]
mod check;

network! {
    /// Two branches added, two heads concatenated, a Dense layer over both.
    pub struct Branches: [6] -> [4] graph {
        input x;
        a = left(x): Dense { units: 5, activation: Relu };
        b = right(x): Dense { units: 5 };
        s = add(a, b);
        c = up(s): Dense { units: 3 };
        d = down(s): Dense { units: 2, activation: Relu };
        both = concat(c, d);
        h = head(both): Dense { units: 4 };
        output h;
    }
}

const HEADER: &str = "The graph network of `tests/layers/int8_graph_codegen.rs`, int8.\n\
                      Written by `QuantizedGraph::rust_source` (see that test); do not edit.";

/// Parameters and calibration samples from integer formulas: no random generator.
fn model_and_calibration() -> (Model<Branches>, Vec<f32>) {
    let mut model = Model::<Branches>::new(1);
    let (params, _) = model.split_state_mut();
    for (i, p) in params.iter_mut().enumerate() {
        *p = ((i * 37 + 11) % 101) as f32 / 100.0 - 0.5;
    }
    let calibration = (0..6 * 40).map(|i| ((i * 53 + 7) % 97) as f32 / 24.0 - 2.0).collect();
    (model, calibration)
}

#[test]
fn generated_graph_source_computes_what_the_quantized_graph_does() {
    let (model, calibration) = model_and_calibration();
    let int8 = model.quantize_graph(&calibration, &QuantizeOptions::default()).unwrap();
    let source = int8.rust_source(HEADER);
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/layers/int8_graph_generated.rs");
    if std::env::var_os("NN_WRITE_GENERATED").is_some() {
        std::fs::write(path, &source).unwrap();
    }
    assert_eq!(
        source,
        include_str!("int8_graph_generated.rs"),
        "the generated module is stale: rewrite it with NN_WRITE_GENERATED=1 (see the module documentation)"
    );
    assert_eq!(generated::INPUT_LEN, 6);
    assert_eq!(generated::OUTPUT_LEN, 4);
    // The values the generated arena holds: the input and the seven results.
    assert_eq!(generated::ARENA_LEN, 6 + 5 + 5 + 5 + 3 + 2 + 5 + 4);
    // Constants: 105 int8 weights; a bias (4 B) and a per-channel multiplier (8 B) for
    // each of the 19 outputs of the five Dense layers; the add's 40 B; 16 B for the
    // input's and output's quantization.
    assert_eq!(generated::PARAM_BYTES, (30 + 30 + 15 + 10 + 20) + 12 * (5 + 5 + 3 + 2 + 4) + 40 + 16);
    let mut arena = [0i8; generated::ARENA_LEN];
    let mut differing_outputs = std::collections::BTreeSet::new();
    for sample in calibration.chunks_exact(6) {
        let x: Vec<i8> = sample.iter().map(|&v| generated::MODEL.input.quantize(v)).collect();
        let expected = int8.forward(&x).unwrap();
        let got = generated::MODEL.forward(&x, &mut arena).unwrap();
        assert_eq!(got, expected.as_slice());
        differing_outputs.insert(expected);
    }
    assert!(differing_outputs.len() > 20, "the samples should give different outputs");
    // The firmware's check (`firmware/src/bin/int8_graph.rs`) expects the host's digest.
    assert_eq!(check::digest(&generated::MODEL, &mut arena, |_| {}), Some(check::EXPECTED));
    // A short arena is an error, not a panic.
    assert!(generated::MODEL.forward(&[0; 6], &mut [0i8; 4]).is_err());
}
