//! The small real-time steps written out for another implementation to run (`nn-bench
//! --export-steps DIR`, read by `tools/rtneural-bench`): one JSON file per case,
//! `DIR/<case>.json`, with the benchmark's parameters as a PyTorch `state_dict` (the
//! keys and layouts of `nn.Linear`, `nn.GRU` and `nn.LSTM`, nested lists row by row, each
//! number printed so that it reads back to the same `f32`), the inputs of a few steps
//! (the first is the input the timed step repeats) and this library's outputs after each
//! step, from a zero state.
use std::fmt::Write as _;
use std::path::Path;

use nn_core::kernels::recurrent::CellKind;
use nn_core::layers::{GruCell, LstmCell};
use nn_core::prelude::*;
use nn_core::stream::{Step, Stream};

use crate::models::{Dense8, StreamGru, StreamGru8, StreamLstm16, StreamLstm64};
use crate::{dense8_input, step_input, step_params, uniform};

/// Steps checked per case.
const STEPS: usize = 8;

/// The inputs of the checked steps: the timed input, then inputs in `[-1, 1)`.
fn inputs(first: &[f32]) -> Vec<Vec<f32>> {
    let mut all = vec![first.to_vec()];
    for k in 1..STEPS {
        all.push(uniform(first.len(), 100 + k as u64).iter().map(|v| 2.0 * v - 1.0).collect());
    }
    all
}

/// `[a,b,...]` with every value read back exactly (Rust prints the shortest such form).
fn list(v: &[f32]) -> String {
    let mut s = String::from("[");
    for (i, x) in v.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        write!(s, "{x}").expect("writing to a string");
    }
    s.push(']');
    s
}

/// A row-major matrix of `cols` columns as a list of rows.
fn matrix(w: &[f32], cols: usize) -> String {
    let rows: Vec<String> = w.chunks_exact(cols).map(list).collect();
    format!("[{}]", rows.join(","))
}

/// One case file.
fn case(name: &str, layer: &str, state_dict: &[(&str, String)], xs: &[Vec<f32>], ys: &[Vec<f32>]) -> String {
    let dict: Vec<String> = state_dict.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
    let xs: Vec<String> = xs.iter().map(|x| list(x)).collect();
    let ys: Vec<String> = ys.iter().map(|y| list(y)).collect();
    format!(
        "{{\"case\":\"{name}\",\"layer\":\"{layer}\",\"isa\":\"{}\",\"state_dict\":{{{}}},\"inputs\":[{}],\"outputs\":[{}]}}\n",
        nn_core::kernels::isa::isa().name(),
        dict.join(","),
        xs.join(","),
        ys.join(",")
    )
}

/// The recurrent step case `name` of `layer`, a `cell` of `I` inputs and `H` units.
fn step_case<L, const I: usize, const H: usize>(name: &str, layer: L, cell: CellKind) -> String
where
    L: Step<StepInput = Shape1<I>, StepOutput = Shape1<H>> + Copy,
{
    let params = step_params(layer);
    let rows = cell.gates() * H;
    assert_eq!(params.len(), rows * (I + H + 2), "{name}: parameters");
    let (ih, rest) = params.split_at(rows * I);
    let (hh, rest) = rest.split_at(rows * H);
    let (b_ih, b_hh) = rest.split_at(rows);
    let xs = inputs(step_input::<I>().as_slice());
    let mut stream = Stream::new(layer, &params, &[]);
    let ys: Vec<Vec<f32>> =
        xs.iter().map(|x| stream.step(&Tensor::from_slice(x).expect("an input of I")).as_slice().to_vec()).collect();
    let state_dict = [
        ("weight_ih_l0", matrix(ih, I)),
        ("weight_hh_l0", matrix(hh, H)),
        ("bias_ih_l0", list(b_ih)),
        ("bias_hh_l0", list(b_hh)),
    ];
    case(name, if cell == CellKind::Gru { "gru" } else { "lstm" }, &state_dict, &xs, &ys)
}

/// Writes the five case files into `dir` (created if missing).
pub fn export_steps(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let model = Model::<Dense8>::new(1);
    let (w, b) = model.params().split_at(64);
    let xs = inputs(&dense8_input());
    let ys: Vec<Vec<f32>> =
        xs.iter().map(|x| model.predict_one(&Tensor::from_slice(x).expect("8 inputs")).as_slice().to_vec()).collect();
    let files = [
        ("dense8_8_b1", case("dense8_8_b1", "dense", &[("weight", matrix(w, 8)), ("bias", list(b))], &xs, &ys)),
        ("gru8_8_step_b1", step_case("gru8_8_step_b1", StreamGru8::new(GruCell), CellKind::Gru)),
        ("lstm16_16_step_b1", step_case("lstm16_16_step_b1", StreamLstm16::new(LstmCell), CellKind::Lstm)),
        ("gru_step_b1", step_case("gru_step_b1", StreamGru::new(GruCell), CellKind::Gru)),
        ("lstm8_64_step_b1", step_case("lstm8_64_step_b1", StreamLstm64::new(LstmCell), CellKind::Lstm)),
    ];
    for (name, text) in files {
        std::fs::write(dir.join(format!("{name}.json")), text)?;
    }
    Ok(())
}
