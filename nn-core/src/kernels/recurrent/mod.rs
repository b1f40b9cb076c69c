//! Recurrent kernels: simple RNN, LSTM and GRU cells, stacked and bidirectional, with
//! PyTorch's equations, gate order and parameter layout.
//!
//! Per layer `l` and direction `d`, with `p = W_ih x_t + b_ih` (input projection) and
//! `q = W_hh h_{t-1} + b_hh` (recurrent projection), both `[G * H]`:
//!
//! | cell | gates (`G`) | step |
//! |---|---|---|
//! | RNN | 1 | `h = act(p + q)`, `act` tanh or ReLU |
//! | LSTM | 4: `i, f, g, o` | `i, f, o = sigmoid(p + q)`, `g = tanh(p + q)`, `c = f c_prev + i g`, `h = o tanh(c)` |
//! | GRU | 3: `r, z, n` | `r, z = sigmoid(p + q)`, `n = tanh(p_n + r q_n)`, `h = (1 - z) n + z h_prev` |
//!
//! The GRU's reset gate multiplies the recurrent projection *after* the matmul
//! (`q_n = W_hn h + b_hn`), as PyTorch does.
//!
//! Parameters of `(l, d)`, in `state_dict` order: `weight_ih [G H, I_l]`,
//! `weight_hh [G H, H]`, `bias_ih [G H]`, `bias_hh [G H]`, where `I_0 = F` and
//! `I_l = D H` above the first layer (its input is the concatenation of both directions
//! of the layer below). Blocks are ordered `l0, l0_reverse, l1, l1_reverse, ...`.
//!
//! Three paths share the cell arithmetic ([`lstm_unit`], [`gru_unit`], [`rnn_unit`]):
//!
//! * [`forward`] (inference) computes every projection element as one fixed-order
//!   dot product ([`project`]), sample by sample and step by step, so its result does
//!   not depend on the batch size and [`step`] (streaming) reproduces it bit for bit;
//! * [`forward_train`] computes the input projections of all time steps and samples
//!   with one GEMM (`[B T, I] x [I, G H]`) and the recurrent projections with one GEMM
//!   per step (`[B, H] x [H, G H]`), keeping gates and states for [`backward`];
//! * [`backward`] is backpropagation through time, optionally truncated.
//!
//! Layouts: a batch is sample-major (`x` is `[B, T, F]`, the output `[B, T, O]` or
//! `[B, O]`); states (initial, final and their gradients) are `[B, L D, H]`, PyTorch's
//! `h_0 [L D, B, H]` with the batch outermost.
mod cells;
mod inference;
mod layout;
mod streaming;
mod training;

#[cfg(feature = "internals")]
pub use cells::cell_step;
#[cfg(any(feature = "internals", target_arch = "aarch64"))]
pub use cells::{gru_unit, lstm_unit, rnn_unit};
pub use inference::{forward, project};
pub use layout::{cache_len, params_len, scratch_len, CellKind, Config, Merge, States, StatesMut};
pub use streaming::step;
#[cfg(feature = "internals")]
pub use streaming::to_panels;
#[cfg(target_arch = "x86_64")]
pub use streaming::to_step_order;
#[cfg(any(target_arch = "x86_64", feature = "internals"))]
pub use streaming::StepPanels;
#[cfg(feature = "internals")]
pub use training::PARALLEL_MIN_MACS;
pub use training::{backward, forward_train};
