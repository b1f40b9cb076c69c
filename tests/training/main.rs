//! Training: optimizers, losses, weight penalties and constraints, frozen layers.

#[path = "../common/gradcheck.rs"]
mod gradcheck;

#[path = "../common/standalone.rs"]
mod standalone;

#[path = "../common/thread_children.rs"]
mod thread_children;

mod checked_settings;
mod custom_step;
mod fit_step;
mod freeze;
mod losses;
mod mlp_threads;
mod multi_io;
mod optimizers;
mod output_losses;
mod prelude_names;
mod quantization_aware;
mod regularization;
mod token_ids;
