//! Layers, networks and the macro's expansion: gradients against central
//! differences of independent `f64` references, shapes and sizes, stack and heap use.
//!
//! The binary's global allocator counts the allocations of the calling thread
//! (`tests/common/counting_alloc.rs`), for the tests that prove a step allocates nothing.

#[path = "../common/counting_alloc.rs"]
mod counting_alloc;

#[path = "../common/gradcheck.rs"]
mod gradcheck;

#[path = "../common/standalone.rs"]
mod standalone;

#[path = "../common/thread_children.rs"]
mod thread_children;

#[global_allocator]
static ALLOCATOR: counting_alloc::Counting = counting_alloc::Counting;

mod alloc_free;
mod attention_backward;
mod attention_bench;
mod attention_masks;
mod attention_threads;
mod backward;
mod cnn_threads;
mod conv;
mod conv_alloc_free;
mod conv_network;
mod describe;
mod forward_scratch;
mod fused_inference;
mod graph_network;
mod handwritten_expansion;
mod int8_graph_codegen;
mod macro_expansion;
mod predict_large;
mod quantize_network;
mod rnn;
mod rnn_state;
mod stack_bound;
