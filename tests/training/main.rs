//! Training: optimizers, losses, weight penalties and constraints, frozen layers.

#[path = "../common/gradcheck.rs"]
mod gradcheck;

mod freeze;
mod losses;
mod optimizers;
mod regularization;
