//! Fuzzing the loaders: 150,000 mutated files (bit flips, truncations, header edits of
//! valid files, random bytes, generated headers with huge declared lengths and
//! offsets), each loaded with random options. No input may panic; every failed load
//! must leave the model unchanged; every successful load must have stored exactly the
//! file's values (checked against the `safetensors` crate's reader).
//!
//! Deterministic (a SplitMix64 stream from a fixed seed); a failing case prints its
//! number and strategy and writes its bytes to `target/io_fuzz_failure.safetensors`.
use crate::io_nets;

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Instant;

use io_nets::{bits, tensors, Centered, Encoder};
use nn_core::io::{
    from_safetensors_bytes, to_safetensors_bytes, to_safetensors_bytes_with, Checkpoint, Dtype, LoadError, LoadOptions,
    LoadReport, SaveOptions,
};
use nn_core::{Layer, Model};
use safetensors::SafeTensors;

const CASES: usize = 150_000;

/// SplitMix64: a tiny, well-mixed deterministic generator.
struct Prng(u64);

impl Prng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (`n > 0`); the bias is irrelevant here.
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    /// True with probability `1 / n`.
    fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Numbers that probe the edges of lengths, offsets and dimensions.
const NUMBERS: &[&str] = &[
    "0",
    "1",
    "3",
    "4",
    "8",
    "24",
    "-1",
    "4294967296",
    "2305843009213693951",
    "4611686018427387904",
    "9223372036854775807",
    "18446744073709551615",
    "18446744073709551616",
    "99999999999999999999999",
    "1e3",
    "0.5",
    "null",
    "\"8\"",
];

const DTYPES: &[&str] =
    &["F32", "F16", "BF16", "F64", "I64", "I32", "U8", "BOOL", "F4", "F6_E2M3", "F8_E4M3", "C64", "XYZ", "f32", ""];

const NAMES: &[&str] = &[
    "norm.weight",
    "norm.running_mean",
    "fc.weight",
    "fc.bias",
    "fc1.weight",
    "fc2.bias",
    "__optimizer.state",
    "encoder.fc1.weight",
    "__metadata__",
    "",
    "norm",
];

/// The header region `8..8 + n` of a file, if its length field is plausible.
fn header_range(bytes: &[u8]) -> Option<std::ops::Range<usize>> {
    let n = usize::try_from(u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?)).ok()?;
    let end = n.checked_add(8).filter(|&end| end <= bytes.len())?;
    Some(8..end)
}

/// Replaces the header text of `bytes` with `f(header)`, and (usually) rewrites the
/// length field to match.
fn edit_header(bytes: &mut Vec<u8>, rng: &mut Prng, f: impl FnOnce(&mut Prng, String) -> String) {
    let Some(range) = header_range(bytes) else { return };
    let header = String::from_utf8_lossy(&bytes[range.clone()]).into_owned();
    let edited = f(rng, header);
    let mut out = Vec::with_capacity(bytes.len() + edited.len());
    let n = if rng.one_in(4) { range.len() } else { edited.len() };
    out.extend_from_slice(&(n as u64).to_le_bytes());
    out.extend_from_slice(edited.as_bytes());
    out.extend_from_slice(&bytes[range.end..]);
    *bytes = out;
}

/// Replaces the `k`-th match of `pattern` (a random one) with `with`.
fn replace_random_match(rng: &mut Prng, text: &str, pattern: impl Fn(&str) -> Option<usize>, with: &str) -> String {
    let starts: Vec<(usize, usize)> = (0..text.len())
        .filter(|&i| text.is_char_boundary(i))
        .filter_map(|i| pattern(&text[i..]).map(|l| (i, l)))
        .collect();
    if starts.is_empty() {
        return text.to_string();
    }
    let (at, len) = *rng.pick(&starts);
    format!("{}{}{}", &text[..at], with, &text[at + len..])
}

/// The length of the run of digits that starts `s` (if `s` starts one after a non-digit).
fn digits(s: &str) -> Option<usize> {
    let n = s.bytes().take_while(u8::is_ascii_digit).count();
    (n > 0).then_some(n)
}

/// A header written from scratch: random tensors, dtypes, shapes and offsets (often
/// huge), random metadata, and a data section that may or may not match.
fn generated_file(rng: &mut Prng) -> Vec<u8> {
    let mut json = String::from("{");
    if rng.one_in(3) {
        json += &format!(r#""__metadata__":{{"format":"pt","k{}":"{}"}},"#, rng.below(10), rng.below(1000));
    }
    let mut offset: u64 = if rng.one_in(10) { rng.next() } else { 0 };
    let count = rng.below(6);
    for i in 0..count {
        let name = if rng.one_in(4) { format!("t{}", rng.below(100)) } else { rng.pick(NAMES).to_string() };
        let dtype = rng.pick(DTYPES);
        let rank = rng.below(4);
        let dims: Vec<u64> = (0..rank)
            .map(|_| match rng.below(6) {
                0 => (1 << 61) - 1,
                1 => rng.next(),
                2 => 1 << 32,
                _ => *rng.pick(&[0, 1, 2, 3, 8, 24]),
            })
            .collect();
        let elements = dims.iter().fold(1u64, |a, &d| a.wrapping_mul(d));
        let len = if rng.one_in(4) { rng.next() >> rng.below(64) } else { elements.wrapping_mul(4) };
        let end = offset.wrapping_add(len);
        let shape: Vec<String> = dims.iter().map(u64::to_string).collect();
        let sep = if i > 0 { "," } else { "" };
        json += &format!(
            r#"{sep}"{name}":{{"dtype":"{dtype}","shape":[{}],"data_offsets":[{offset},{end}]}}"#,
            shape.join(",")
        );
        offset = if rng.one_in(8) { rng.next() } else { end };
    }
    json.push('}');
    let data = if offset < 4096 && !rng.one_in(4) { offset as usize } else { rng.below(256) };
    let n = if rng.one_in(8) { rng.next() } else { json.len() as u64 };
    let mut bytes = n.to_le_bytes().to_vec();
    bytes.extend_from_slice(json.as_bytes());
    bytes.extend((0..data).map(|_| rng.next() as u8));
    bytes
}

/// Tensors of `(2^61 - 1)` bytes each, contiguous: valid spans whose offsets sum to
/// nearly `2^64`, where unchecked arithmetic on the declared lengths overflows.
fn offsets_near_the_end_of_u64(rng: &mut Prng) -> Vec<u8> {
    let span = (1u64 << 61) - 1;
    let count = 7 + rng.below(3) as u64;
    let tensors: Vec<String> = (0..count)
        .map(|i| {
            format!(
                r#""t{i}":{{"dtype":"U8","shape":[{span}],"data_offsets":[{},{}]}}"#,
                i.wrapping_mul(span),
                (i + 1).wrapping_mul(span)
            )
        })
        .collect();
    let json = format!("{{{}}}", tensors.join(","));
    let mut bytes = (json.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(json.as_bytes());
    bytes.extend((0..rng.below(64)).map(|_| rng.next() as u8));
    bytes
}

/// Applies one mutation to a copy of `seed`; returns its name.
fn mutate(rng: &mut Prng, seed: &[u8], bytes: &mut Vec<u8>) -> &'static str {
    bytes.clear();
    bytes.extend_from_slice(seed);
    let len = bytes.len();
    match rng.below(16) {
        0 => {
            for _ in 0..1 + rng.below(8) {
                let at = rng.below(len);
                bytes[at] ^= 1 << rng.below(8);
            }
            "bit flips"
        }
        1 => {
            let header = header_range(bytes).unwrap_or(0..len.min(64));
            for _ in 0..1 + rng.below(4) {
                let at = header.start + rng.below(header.len().max(1)).min(len - 1 - header.start);
                bytes[at] ^= 1 << rng.below(8);
            }
            "header bit flips"
        }
        2 => {
            bytes.truncate(rng.below(len + 1));
            "truncation"
        }
        3 => {
            bytes.extend((0..1 + rng.below(64)).map(|_| rng.next() as u8));
            "appended bytes"
        }
        4 => {
            if bytes.len() < 8 {
                bytes.resize(8, 0);
            }
            let n: u64 = match rng.below(5) {
                0 => rng.next(),
                1 => u64::MAX - rng.below(16) as u64,
                2 => 100_000_000 + rng.below(2) as u64,
                _ => {
                    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap());
                    n.wrapping_add(rng.below(17) as u64).wrapping_sub(8)
                }
            };
            bytes[..8].copy_from_slice(&n.to_le_bytes());
            "header length"
        }
        5 => {
            let number = rng.pick(NUMBERS);
            edit_header(bytes, rng, |rng, h| replace_random_match(rng, &h, digits, number));
            "number edit"
        }
        6 => {
            let dtype = format!("\"{}\"", rng.pick(DTYPES));
            edit_header(bytes, rng, |rng, h| {
                replace_random_match(rng, &h, |s| s.starts_with("\"F32\"").then_some(5), &dtype)
            });
            "dtype edit"
        }
        7 => {
            let shape = *rng.pick(&[
                "[]",
                "[0]",
                "[1]",
                "[8]",
                "[3,8]",
                "[8,3]",
                "[24]",
                "[2305843009213693951]",
                "[-1]",
                "[1,]",
            ]);
            edit_header(bytes, rng, |rng, h| {
                replace_random_match(
                    rng,
                    &h,
                    |s| s.starts_with("\"shape\":[").then(|| s.find(']').map(|i| i + 1)).flatten(),
                    &format!("\"shape\":{shape}"),
                )
            });
            "shape edit"
        }
        8 => {
            let name = format!("\"{}\"", rng.pick(NAMES));
            edit_header(bytes, rng, |rng, h| {
                replace_random_match(
                    rng,
                    &h,
                    |s| {
                        (s.starts_with("\"fc") || s.starts_with("\"norm"))
                            .then(|| s[1..].find('"').map(|i| i + 2))
                            .flatten()
                    },
                    &name,
                )
            });
            "name edit"
        }
        9 => {
            // Delete or duplicate a span of the header text.
            edit_header(bytes, rng, |rng, h| {
                let (a, b) = (rng.below(h.len() + 1), rng.below(h.len() + 1));
                let (a, b) = (a.min(b), a.max(b));
                if !(h.is_char_boundary(a) && h.is_char_boundary(b)) {
                    return h;
                }
                if rng.one_in(2) {
                    format!("{}{}", &h[..a], &h[b..])
                } else {
                    format!("{}{}", &h[..b], &h[a..])
                }
            });
            "header splice"
        }
        10 => {
            let n = rng.below(512);
            bytes.clear();
            if rng.one_in(2) {
                bytes.extend_from_slice(&(rng.below(n + 8) as u64).to_le_bytes());
            }
            bytes.extend((0..n).map(|_| rng.next() as u8));
            "random bytes"
        }
        11 => {
            *bytes = generated_file(rng);
            "generated header"
        }
        15 => {
            *bytes = offsets_near_the_end_of_u64(rng);
            "offsets near 2^64"
        }
        12 => {
            // A NaN, an infinity or a huge value in the data section.
            if let Some(header) = header_range(bytes) {
                let data = len - header.end;
                if data >= 4 {
                    let at = header.end + 4 * rng.below(data / 4);
                    let value = *rng.pick(&[f32::NAN, f32::INFINITY, f32::NEG_INFINITY, f32::MAX, -0.0]);
                    bytes[at..at + 4].copy_from_slice(&value.to_le_bytes());
                }
            }
            "special value"
        }
        13 => {
            for _ in 0..1 + rng.below(16) {
                let at = rng.below(len);
                bytes[at] = rng.next() as u8;
            }
            "random byte writes"
        }
        _ => {
            // Two mutations in a row.
            let first = bytes.clone();
            let mut second = Vec::new();
            mutate(rng, &first, &mut second);
            if second.is_empty() {
                return "empty";
            }
            let mut third = Vec::new();
            mutate(rng, &second, &mut third);
            *bytes = third;
            "two mutations"
        }
    }
}

fn random_options(rng: &mut Prng) -> LoadOptions {
    let prefix =
        |rng: &mut Prng| rng.one_in(8).then(|| rng.pick(&["norm", "fc.", "encoder", "__optimizer"]).to_string());
    LoadOptions {
        prefix: prefix(rng),
        target_prefix: prefix(rng),
        allow_unexpected: rng.one_in(4),
        allow_missing: rng.one_in(4),
        allow_non_finite: rng.one_in(4),
        convert_dtypes: rng.one_in(4),
    }
}

/// A loader under test: what it loads into, and how.
#[derive(Clone, Copy, Debug)]
enum Target {
    Centered,
    Encoder,
    Checkpoint,
}

/// Loads a file into a model with options.
type Loader<L> = dyn Fn(&mut Model<L>, &[u8], &LoadOptions) -> Result<LoadReport, LoadError>;

fn check<L: Layer + Default>(
    case: usize,
    bytes: &[u8],
    options: &LoadOptions,
    model: &mut Model<L>,
    load: &Loader<L>,
) -> Result<(), LoadError> {
    let before = bits(model.state());
    let result = load(model, bytes, options);
    match &result {
        Err(error) => {
            let _ = error.to_string();
            assert_eq!(bits(model.state()), before, "case {case}: a failed load changed the state ({error})");
        }
        Ok(report) => {
            // Our parser accepted the file, so its lengths are consistent and the
            // crate's reader is safe to use as the reference.
            let file = SafeTensors::deserialize(bytes).unwrap_or_else(|e| panic!("case {case}: accepted, but {e}"));
            let strip = |p: &Option<String>| match p.as_deref() {
                None | Some("") => String::new(),
                Some(p) if p.ends_with('.') => p.to_string(),
                Some(p) => format!("{p}."),
            };
            let (prefix, target) = (strip(&options.prefix), strip(&options.target_prefix));
            for (name, _, range) in tensors(model) {
                let now = bits(&model.state()[range.clone()]);
                if !report.loaded.contains(&name) {
                    assert_eq!(now, before[range], "case {case}: `{name}` was not loaded but changed");
                    continue;
                }
                let view = file.tensor(&format!("{prefix}{}", &name[target.len()..])).unwrap();
                if view.dtype() == Dtype::F32 {
                    let want: Vec<u32> =
                        view.data().chunks_exact(4).map(|b| u32::from_le_bytes(b.try_into().unwrap())).collect();
                    assert_eq!(now, want, "case {case}: `{name}` differs from the file");
                }
                if !options.allow_non_finite {
                    assert!(model.state()[range].iter().all(|v| v.is_finite()), "case {case}: `{name}` not finite");
                }
            }
            model.state_mut().iter_mut().zip(&before).for_each(|(v, b)| *v = f32::from_bits(*b));
        }
    }
    result.map(|_| ())
}

fn kind(result: &Result<(), LoadError>) -> &'static str {
    match result {
        Ok(()) => "ok",
        Err(LoadError::Io { .. }) => "Io",
        Err(LoadError::Format { .. }) => "Format",
        Err(LoadError::MissingTensor { .. }) => "MissingTensor",
        Err(LoadError::UnexpectedTensor { .. }) => "UnexpectedTensor",
        Err(LoadError::ShapeMismatch { .. }) => "ShapeMismatch",
        Err(LoadError::DtypeMismatch { .. }) => "DtypeMismatch",
        Err(LoadError::NonFinite { .. }) => "NonFinite",
        Err(LoadError::NotACheckpoint { .. }) => "NotACheckpoint",
        Err(_) => "other",
    }
}

#[test]
fn mutated_files_never_panic_and_failed_loads_change_nothing() {
    let centered = Model::<Centered>::new(1);
    let encoder = Model::<Encoder>::new(2);
    let metadata = SaveOptions { metadata: BTreeMap::from([("format".into(), "pt".into())]), ..Default::default() };
    let optimizer_state: Vec<f32> = (0..2 * Centered::PARAMS).map(|i| i as f32).collect();
    let checkpoint = Checkpoint {
        epoch: 4,
        optimizer_step: 9,
        optimizer_state: &optimizer_state[..],
        seed: 3,
        metadata: BTreeMap::new(),
    };
    let seeds: Vec<(Target, Vec<u8>)> = vec![
        (Target::Centered, to_safetensors_bytes(&centered)),
        (Target::Centered, to_safetensors_bytes_with(&centered, &metadata).unwrap()),
        (Target::Encoder, to_safetensors_bytes(&encoder)),
        (Target::Checkpoint, checkpoint.to_bytes(&centered).unwrap()),
    ];

    let mut rng = Prng(0x5eed_1e55_f00d_cafe);
    let mut centered_model = Model::<Centered>::new(7);
    let mut encoder_model = Model::<Encoder>::new(8);
    let mut checkpoint_model = Model::<Centered>::new(9);
    let plain = |m: &mut Model<Centered>, b: &[u8], o: &LoadOptions| from_safetensors_bytes(m, b, o);
    let plain_encoder = |m: &mut Model<Encoder>, b: &[u8], o: &LoadOptions| from_safetensors_bytes(m, b, o);
    let as_checkpoint = |m: &mut Model<Centered>, b: &[u8], _: &LoadOptions| {
        Checkpoint::from_bytes(m, b)
            .map(|_| LoadReport { loaded: tensors(m).into_iter().map(|t| t.0).collect(), ..LoadReport::default() })
    };

    let mut outcomes: BTreeMap<&str, usize> = BTreeMap::new();
    let mut strategies: BTreeMap<&str, usize> = BTreeMap::new();
    let mut bytes = Vec::new();
    let start = Instant::now();
    for case in 0..CASES {
        let (target, seed) = rng.pick(&seeds);
        let strategy = mutate(&mut rng, seed, &mut bytes);
        let options =
            if matches!(target, Target::Checkpoint) { LoadOptions::default() } else { random_options(&mut rng) };
        let outcome = catch_unwind(AssertUnwindSafe(|| match target {
            Target::Centered => check(case, &bytes, &options, &mut centered_model, &plain),
            Target::Encoder => check(case, &bytes, &options, &mut encoder_model, &plain_encoder),
            Target::Checkpoint => check(case, &bytes, &options, &mut checkpoint_model, &as_checkpoint),
        }));
        match outcome {
            Ok(result) => *outcomes.entry(kind(&result)).or_default() += 1,
            Err(_) => {
                let path = concat!(env!("CARGO_MANIFEST_DIR"), "/target/io_fuzz_failure.safetensors");
                let _ = std::fs::write(path, &bytes);
                panic!("case {case} ({strategy}, {target:?}, {options:?}) panicked; input written to {path}");
            }
        }
        *strategies.entry(strategy).or_default() += 1;
    }
    let elapsed = start.elapsed();
    eprintln!("{CASES} mutated files in {elapsed:.2?}");
    eprintln!("strategies: {strategies:?}");
    eprintln!("outcomes: {outcomes:?}");

    assert_eq!(outcomes.values().sum::<usize>(), CASES);
    // The mutations reach every check of the loader, not only the parser.
    for kind in [
        "ok",
        "Format",
        "MissingTensor",
        "UnexpectedTensor",
        "ShapeMismatch",
        "DtypeMismatch",
        "NonFinite",
        "NotACheckpoint",
    ] {
        assert!(outcomes.get(kind).copied().unwrap_or(0) >= 50, "too few `{kind}` outcomes: {outcomes:?}");
    }
}
