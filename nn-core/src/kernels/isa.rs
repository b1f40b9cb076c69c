//! The instruction set the kernels use, chosen once per process.
//!
//! Every kernel that has more than one form asks [`isa`] which to run; nothing else
//! in the crate tests CPU features. With `std`, the CPU is probed on the first call
//! and the answer kept in an atomic; without `std` it is fixed at compile time by the
//! target's features (`-C target-feature`).
//!
//! Every form of a kernel rounds each output element in the same order (see
//! `portable.rs`), so the choice changes speed, never results: a network gives the
//! same bits on an AVX-512 server, an AVX2 laptop, an AArch64 machine and a
//! microcontroller. One exception is chosen for speed and documented: with `alloc` and
//! without a register tile (neither AVX2 nor NEON: another architecture, an old x86-64
//! CPU, or `NN_ISA=portable`), products of at least `gemm::PACKED_MIN_FLOPS`
//! multiply-adds go to `matrixmultiply`, several times faster there than the portable
//! tile, whose rounding is not guaranteed to be the tiles' ([`kernels`] names it; see
//! `gemm`).
//!
//! On AArch64, NEON (Advanced SIMD) is part of the base architecture: [`Isa::Neon`] is
//! chosen on every AArch64 CPU, with or without `std`.
//!
//! The environment variable `NN_ISA` (`avx512`, `avx2`, `neon` or `portable`, read
//! once) lowers the choice, for tests that compare the forms and for benchmarks; it
//! never raises it above what the CPU has, so no kernel runs on a CPU without its
//! instructions (a name this CPU cannot run, such as `neon` on x86-64 or `avx512` on an
//! AVX2 CPU, leaves the CPU's own choice).

/// An instruction set the kernels have a form for. The order is capability within an
/// architecture (`Portable < Avx2Fma < Avx512` on x86-64, `Portable < Neon` on
/// AArch64); [`Isa::runs_on`] says which run on a CPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Isa {
    /// Plain Rust (every target): `portable.rs`, with `vfma.f32` on Cortex-M FPUs.
    Portable,
    /// AArch64 Advanced SIMD (baseline on every AArch64 CPU): `neon.rs`, 4-lane
    /// vectors arranged as the x86-64 kernels' 8 lanes so that sums round alike.
    Neon,
    /// x86-64 with AVX2 and FMA: `avx2.rs`.
    Avx2Fma,
    /// x86-64 with AVX-512 F (and AVX2 and FMA): `avx512.rs` where it is faster,
    /// `avx2.rs` elsewhere.
    Avx512,
}

impl Isa {
    /// Every instruction set, in order.
    #[cfg(any(feature = "internals", test))]
    pub const ALL: [Isa; 4] = [Isa::Portable, Isa::Neon, Isa::Avx2Fma, Isa::Avx512];

    /// The name `NN_ISA` takes and the benchmark prints: `avx512`, `avx2`, `neon`,
    /// `portable`.
    pub const fn name(self) -> &'static str {
        match self {
            Isa::Portable => "portable",
            Isa::Neon => "neon",
            Isa::Avx2Fma => "avx2",
            Isa::Avx512 => "avx512",
        }
    }

    /// The instruction set named `name` (as [`Isa::name`] spells it; `avx2+fma` and
    /// `avx512f` are accepted too).
    #[cfg(any(feature = "std", feature = "internals", test))]
    pub fn parse(name: &str) -> Option<Isa> {
        let is = |names: &[&str]| names.iter().any(|n| name.trim().eq_ignore_ascii_case(n));
        if is(&["portable", "scalar"]) {
            Some(Isa::Portable)
        } else if is(&["avx2", "avx2+fma", "avx2fma"]) {
            Some(Isa::Avx2Fma)
        } else if is(&["avx512", "avx512f", "avx-512"]) {
            Some(Isa::Avx512)
        } else if is(&["neon", "asimd", "aarch64"]) {
            Some(Isa::Neon)
        } else {
            None
        }
    }

    /// Whether the AVX2 and FMA kernels may run (true for AVX-512 too).
    #[inline(always)]
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64", feature = "internals", test))]
    pub fn avx2(self) -> bool {
        self >= Isa::Avx2Fma
    }

    /// Whether the AVX-512 kernels may run.
    #[inline(always)]
    #[cfg(any(target_arch = "x86_64", feature = "internals", test))]
    pub fn avx512(self) -> bool {
        self == Isa::Avx512
    }

    /// Whether the NEON kernels may run.
    #[inline(always)]
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64", feature = "internals", test))]
    pub fn neon(self) -> bool {
        self == Isa::Neon
    }

    /// Whether this instruction set's kernels run on a CPU that supports `cpu` (as
    /// [`detected`] names it): the portable ones everywhere, the others on their own
    /// architecture at most as capable as the CPU.
    #[cfg(any(feature = "std", feature = "internals", test))]
    pub const fn runs_on(self, cpu: Isa) -> bool {
        match self {
            Isa::Portable => true,
            Isa::Neon => matches!(cpu, Isa::Neon),
            Isa::Avx2Fma => matches!(cpu, Isa::Avx2Fma | Isa::Avx512),
            Isa::Avx512 => matches!(cpu, Isa::Avx512),
        }
    }
}

impl core::fmt::Display for Isa {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

/// What this CPU supports, ignoring `NN_ISA`.
#[cfg(any(feature = "std", feature = "internals", test))]
pub fn detected() -> Isa {
    #[cfg(all(target_arch = "x86_64", feature = "std"))]
    {
        let avx2 = std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma");
        if avx2 && std::is_x86_feature_detected!("avx512f") {
            return Isa::Avx512;
        }
        if avx2 {
            return Isa::Avx2Fma;
        }
        Isa::Portable
    }
    #[cfg(not(all(target_arch = "x86_64", feature = "std")))]
    {
        compiled()
    }
}

/// The instruction set the target's compile-time features guarantee.
#[allow(dead_code)]
const fn compiled() -> Isa {
    if cfg!(all(target_arch = "x86_64", target_feature = "avx2", target_feature = "fma")) {
        if cfg!(target_feature = "avx512f") {
            Isa::Avx512
        } else {
            Isa::Avx2Fma
        }
    } else if cfg!(all(target_arch = "aarch64", target_feature = "neon")) {
        Isa::Neon
    } else {
        Isa::Portable
    }
}

/// The instruction set the kernels use: [`detected`], lowered by `NN_ISA` when that
/// names a lesser one. Probed on the first call, then one relaxed atomic load.
#[inline(always)]
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64", feature = "internals", test))]
pub fn isa() -> Isa {
    #[cfg(feature = "std")]
    {
        use core::sync::atomic::{AtomicU8, Ordering};
        /// 0 until chosen, then `1 + Isa as u8`.
        static CHOSEN: AtomicU8 = AtomicU8::new(0);
        match CHOSEN.load(Ordering::Relaxed) {
            1 => Isa::Portable,
            2 => Isa::Neon,
            3 => Isa::Avx2Fma,
            4 => Isa::Avx512,
            _ => {
                let isa = choose();
                CHOSEN.store(1 + isa as u8, Ordering::Relaxed);
                isa
            }
        }
    }
    #[cfg(not(feature = "std"))]
    {
        const { compiled() }
    }
}

/// The kernels each family runs on when the kernels use `isa`, for the benchmark's
/// report: an instruction set's name ([`Isa::name`]), or `matrixmultiply`. The
/// families with an AVX-512 form take it, the others their AVX2 form (or the portable
/// one); with NEON, the families it has a form for (every one but the element-wise
/// kernels) take it.
///
/// * `gemm`: matrix products, and the convolutions and dense backward built on them;
/// * `gemm_large`: products of at least `gemm::PACKED_MIN_FLOPS` multiply-adds, which
///   without a register tile (neither AVX2 nor NEON, and with `alloc`) go to
///   `matrixmultiply` for speed, whose rounding is not guaranteed to be the other
///   kernels': the one documented exception to the same bits on every instruction set;
/// * `conv_direct`: convolutions read from the padded input (stride 1);
/// * `dense_batch`: a dense layer's forward over a batch (AVX-512 from
///   `avx512::BATCH_MIN_COLUMNS` inputs, AVX2 below);
/// * `gemv_column_major`: matrix-vector products over a transposed matrix;
/// * `dense_batch1`: matrix-vector products over rows (dense layers at batch 1, `dot`,
///   recurrent projections): eight lanes per row, in the AVX2 form (or NEON, or the
///   portable one). One exception the report does not show: a dense layer of exactly 8
///   inputs at batch 1 runs `avx512::gemv8` on AVX-512 (two rows per 16-lane register,
///   the same bits);
/// * `recurrent_cells`: the gate arithmetic of a recurrent step (AVX-512 from 16 units,
///   AVX2 below);
/// * `activations`, `pooling`, `adam`: element-wise kernels; the 2x2 max pooling
///   forward of stride 2 runs `pool::halving::max_forward_avx512` on AVX-512 (the same
///   bits), which the report shows as `avx2 (2x2 max forward: avx512)`, and the ReLU
///   forward of an activation layer is compiled for 16 lanes there (`avx2 (ReLU forward:
///   avx512)`).
#[cfg(any(feature = "internals", test))]
pub fn kernels(isa: Isa) -> [(&'static str, &'static str); 10] {
    let avx2 = if isa.avx2() { Isa::Avx2Fma } else { Isa::Portable }.name();
    let pooling = if isa.avx512() { "avx2 (2x2 max forward: avx512)" } else { avx2 };
    let activations = if isa.avx512() { "avx2 (ReLU forward: avx512)" } else { avx2 };
    let tiled = isa.avx2() || isa.neon();
    let large = if tiled || cfg!(not(feature = "alloc")) { isa.name() } else { "matrixmultiply" };
    let batch1 = if isa.neon() { isa.name() } else { avx2 };
    [
        ("gemm", isa.name()),
        ("gemm_large", large),
        ("conv_direct", isa.name()),
        ("dense_batch", isa.name()),
        ("gemv_column_major", isa.name()),
        ("dense_batch1", batch1),
        ("recurrent_cells", isa.name()),
        ("activations", activations),
        ("pooling", pooling),
        ("adam", avx2),
    ]
}

/// [`detected`], lowered by `NN_ISA` (an unknown name, or one this CPU cannot run, is
/// ignored).
#[cfg(feature = "std")]
#[cold]
fn choose() -> Isa {
    let cpu = detected();
    match std::env::var("NN_ISA").ok().as_deref().and_then(Isa::parse) {
        Some(wanted) if wanted.runs_on(cpu) => wanted,
        _ => cpu,
    }
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_order_is_capability() {
        for isa in Isa::ALL {
            assert_eq!(Isa::parse(isa.name()), Some(isa));
        }
        assert_eq!(Isa::parse("sse2"), None);
        assert!(Isa::Portable < Isa::Avx2Fma && Isa::Avx2Fma < Isa::Avx512);
        assert!(Isa::Avx512.avx2() && !Isa::Portable.avx2() && !Isa::Avx2Fma.avx512());
        assert!(Isa::Neon.neon() && !Isa::Neon.avx2() && !Isa::Avx512.neon());
    }

    #[test]
    fn each_set_runs_on_its_own_architecture_only() {
        for cpu in Isa::ALL {
            assert!(Isa::Portable.runs_on(cpu) && cpu.runs_on(cpu));
        }
        assert!(!Isa::Neon.runs_on(Isa::Avx512) && !Isa::Avx2Fma.runs_on(Isa::Neon));
        assert!(Isa::Avx2Fma.runs_on(Isa::Avx512) && !Isa::Avx512.runs_on(Isa::Avx2Fma));
        // NEON is the base of AArch64: every AArch64 build has it.
        assert_eq!(detected() == Isa::Neon, cfg!(target_arch = "aarch64"));
    }

    #[test]
    fn the_report_shows_the_avx512_max_pooling_forward() {
        let pooling = |isa| kernels(isa).into_iter().find(|&(k, _)| k == "pooling").map(|(_, v)| v);
        assert_eq!(pooling(Isa::Avx512), Some("avx2 (2x2 max forward: avx512)"));
        assert_eq!(pooling(Isa::Avx2Fma), Some("avx2"));
        assert_eq!((pooling(Isa::Neon), pooling(Isa::Portable)), (Some("portable"), Some("portable")));
        let activations = |isa| kernels(isa).into_iter().find(|&(k, _)| k == "activations").map(|(_, v)| v);
        assert_eq!(activations(Isa::Avx512), Some("avx2 (ReLU forward: avx512)"));
        assert_eq!(activations(Isa::Avx2Fma), Some("avx2"));
    }

    #[test]
    fn the_choice_never_exceeds_the_cpu_and_is_stable() {
        let chosen = isa();
        assert!(chosen.runs_on(detected()));
        assert_eq!(isa(), chosen);
    }
}
