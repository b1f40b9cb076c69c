//! Tells the kernels whether the target's FPU has a fused multiply-add instruction that
//! Rust cannot name as a target feature yet: the Cortex-M profiles with FPv4 or FPv5
//! (`vfma.f32`), whose `-eabihf` targets set no `target_feature` cfg; and whether it has
//! the DSP extension (`arm_dsp`: the int8 kernels' `SMLAD`), which Rust does not report
//! either.
fn main() {
    println!("cargo:rustc-check-cfg=cfg(arm_vfma)");
    println!("cargo:rustc-check-cfg=cfg(arm_dsp)");
    println!("cargo:rerun-if-changed=build.rs");
    let target = std::env::var("TARGET").unwrap_or_default();
    if matches!(target.as_str(), "thumbv7em-none-eabihf" | "thumbv8m.main-none-eabihf" | "thumbv8.1m.main-none-eabihf")
    {
        println!("cargo:rustc-cfg=arm_vfma");
    }
    // The DSP extension (`SXTB16`, `SMLAD`) of Armv7E-M, the Cortex-M4 and M7, or any
    // Arm target built with `-C target-feature=+dsp` where Rust reports it.
    let features = std::env::var("CARGO_CFG_TARGET_FEATURE").unwrap_or_default();
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    if target.starts_with("thumbv7em-") || (arch == "arm" && features.split(',').any(|f| f == "dsp")) {
        println!("cargo:rustc-cfg=arm_dsp");
    }
}
