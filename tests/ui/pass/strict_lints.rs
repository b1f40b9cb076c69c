//! Generated code is quiet under strict lints: undocumented networks get a generated
//! doc comment, and every generated helper is hidden inside `const _` blocks.
#![deny(
    warnings,
    missing_docs,
    missing_debug_implementations,
    missing_copy_implementations,
    unused_qualifications,
    unused_results,
    unused_extern_crates,
    trivial_casts,
    trivial_numeric_casts,
    unsafe_code,
    non_ascii_idents,
    single_use_lifetimes,
    variant_size_differences
)]
use nn_core::prelude::*;

network! {
    pub struct Undocumented: [3] -> [2] {
        fc: Dense { units: 2, activation: Softmax },
    }

    #[doc(hidden)]
    pub struct Hidden: [3] -> [2] {
        inner: Undocumented,
    }

    /// `r#type` is a layer named `type`.
    pub(crate) struct Raw: [3] -> [2] {
        r#type: Undocumented,
    }
}

fn main() {
    let model = Model::<Undocumented>::new(0);
    let p = model.predict_one(&[1.0, 2.0, 3.0].into());
    assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-6);
    let mut names = Vec::new();
    Model::<Raw>::new(0).visit_tensors(&mut |t| names.push(t.path.to_string()));
    assert_eq!(names, ["type.fc.weight", "type.fc.bias"]);
    assert_eq!(<Raw as Network>::NAME, "Raw");
}
