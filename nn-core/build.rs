//! Tells the kernels whether the target's FPU has a fused multiply-add instruction that
//! Rust cannot name as a target feature yet: the Cortex-M profiles with FPv4 or FPv5
//! (`vfma.f32`), whose `-eabihf` targets set no `target_feature` cfg.
fn main() {
    println!("cargo:rustc-check-cfg=cfg(arm_vfma)");
    println!("cargo:rerun-if-changed=build.rs");
    let target = std::env::var("TARGET").unwrap_or_default();
    if matches!(target.as_str(), "thumbv7em-none-eabihf" | "thumbv8m.main-none-eabihf" | "thumbv8.1m.main-none-eabihf")
    {
        println!("cargo:rustc-cfg=arm_vfma");
    }
}
