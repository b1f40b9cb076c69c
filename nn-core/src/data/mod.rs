//! Data sets and loaders (needs `std`).
