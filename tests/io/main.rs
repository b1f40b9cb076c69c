//! Files in and out: safetensors models and checkpoints, weights baked at compile time,
//! data loaders, reports (progress, plots) and the C library.

#[path = "../common/fixtures.rs"]
mod fixtures;

#[path = "../common/io_nets.rs"]
mod io_nets;

mod capi;
mod checkpoint;
mod data_limits;
mod data_loaders;
mod errors;
mod fuzz;
mod interrupted_saves;
mod prefix;
mod report_plot;
mod report_progress;
mod roundtrip;
mod weights_baked;
