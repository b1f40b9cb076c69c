//! Training loops (needs `alloc`).
