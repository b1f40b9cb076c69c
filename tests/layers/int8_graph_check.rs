//! The check the int8 graph firmware (`firmware/src/bin/int8_graph.rs`) and the host
//! test (`int8_graph_codegen.rs`) share: the generated graph network run on 16 int8
//! inputs from an integer formula, every output folded into an FNV-1a digest, which
//! must equal [`EXPECTED`] (the host build's) on every target.

/// The digest of the host build.
pub const EXPECTED: u64 = 0x60d8_97fe_5bcb_1552;

/// The digest of the 16 inputs' outputs, or `None` if an inference failed.
pub fn digest(
    model: &nn_core::quant::graph::Int8Graph<'_>,
    arena: &mut [i8],
    mut probe: impl FnMut(bool),
) -> Option<u64> {
    let mut digest = 0xcbf2_9ce4_8422_2325u64;
    let mut x = [0i8; 6];
    for sample in 0..16usize {
        for (k, v) in x.iter_mut().enumerate() {
            *v = ((sample * 31 + k * 17 + sample * k * 7) % 256) as u8 as i8;
        }
        probe(true);
        let y = model.forward(&x, arena);
        probe(false);
        for &v in y.ok()? {
            digest = (digest ^ v as u8 as u64).wrapping_mul(0x0100_0000_01b3);
        }
    }
    Some(digest)
}
