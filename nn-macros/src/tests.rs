//! The phases on token streams: inferred shapes, every diagnostic's message and
//! span, error collection, the generated code, and a fuzz test of the whole pipeline
//! on random and mutated input.
use std::path::Path;
use std::str::FromStr;

use proc_macro2::{Group, TokenStream, TokenTree};

use crate::ir::{Op, ShapeInfo};
use crate::pipeline;

fn tokens(source: &str) -> TokenStream {
    match TokenStream::from_str(source) {
        Ok(t) => t,
        Err(e) => panic!("test source does not lex: {e}"),
    }
}

/// The messages of all errors for `source`, or an empty list.
fn messages(source: &str) -> Vec<String> {
    match pipeline::check(tokens(source)) {
        Ok(_) => Vec::new(),
        Err(e) => e.into_iter().map(|e| e.to_string()).collect(),
    }
}

/// The single error message for `source`.
fn error(source: &str) -> String {
    let all = messages(source);
    assert_eq!(all.len(), 1, "expected one error for {source}, got {all:?}");
    all.into_iter().next().unwrap_or_default()
}

fn net(layers: &str) -> String {
    format!("pub struct Net: [64] -> [10] {{ {layers} }}")
}

#[test]
fn shapes_are_inferred_through_every_layer() {
    let networks = pipeline::check(tokens(
        "/// Doc.
         pub struct Net: [4, 8] -> [4, 8] {
             act: Tanh,
             drop: Dropout { rate: 0 } => [4, 8],
         }
         struct Mlp: [64] -> [10] {
             fc1: Dense { units: 32, activation: LeakyRelu(0.2), bias: false },
             encoder: Encoder,
             relu: Relu,
             fc2: Dense { units: 10 }
         }",
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(networks.len(), 2);
    let known = |s: &ShapeInfo| match s {
        ShapeInfo::Known(d) => Some(d.clone()),
        _ => None,
    };
    let first: Vec<_> = networks[0].sequence().unwrap().into_iter().map(|l| known(&l.output)).collect();
    assert_eq!(first, [Some(vec![4, 8]), Some(vec![4, 8])]);
    let second = networks[1].sequence().unwrap();
    assert_eq!(known(&second[0].output), Some(vec![32]));
    assert!(matches!(second[1].op, Op::Network));
    assert!(matches!(second[1].output, ShapeInfo::Opaque(_)));
    assert!(matches!(second[2].output, ShapeInfo::Opaque(_)));
    assert_eq!(known(&second[3].output), Some(vec![10]));
}

#[test]
fn options_resolve_with_defaults() {
    use crate::kinds::{Activation, Resolved};
    let networks =
        pipeline::check(tokens(&net("fc1: Dense { units: 10, activation: Elu }"))).unwrap_or_else(|e| panic!("{e}"));
    let Op::Builtin { kind, args } = &networks[0].sequence().unwrap()[0].op else {
        panic!("not a built-in layer");
    };
    assert_eq!(kind.name, "Dense");
    assert_eq!(args.count("units"), 10);
    assert!(args.flag("bias"));
    assert_eq!(args.activation("activation"), Activation::Elu(1.0));
    for (value, expected) in [
        ("LeakyRelu", Activation::LeakyRelu(0.01)),
        ("Relu6", Activation::Relu6),
        ("LeakyRelu(0.2)", Activation::LeakyRelu(0.2)),
        ("LeakyRelu(-1)", Activation::LeakyRelu(-1.0)),
        ("Activation::Gelu", Activation::Gelu),
        ("nn_core::Activation::Elu(2)", Activation::Elu(2.0)),
    ] {
        let spec = &crate::kinds::find("Dense").unwrap().options[1];
        let parsed = syn::parse::Parser::parse2(
            |input: syn::parse::ParseStream| -> syn::Result<TokenStream> { input.parse() },
            tokens(value),
        )
        .unwrap();
        let networks = pipeline::check(tokens(&net(&format!("fc1: Dense {{ units: 10, activation: {parsed} }}"))))
            .unwrap_or_else(|e| panic!("{value}: {e}"));
        let Op::Builtin { args, .. } = &networks[0].sequence().unwrap()[0].op else {
            panic!("not a built-in layer");
        };
        assert_eq!(Resolved::Activation(args.activation(spec.name)), Resolved::Activation(expected));
    }
}

#[test]
fn diagnostics_are_in_the_users_terms() {
    let cases: &[(&str, &str)] = &[
        (
            "pub struct Net: [64] -> [10] { fc1: Dense { units: 32 }, fc2: Dense { units: 12 } }",
            "`Net` declares output [10] but its last layer `fc2` produces [12]",
        ),
        (&net("fc1: Dense { units: 32 } => [30], fc2: Dense { units: 10 }"), "`fc1` produces [32], not [30]"),
        (&net("fc1: Dens { units: 10 }"), "unknown layer kind `Dens`; did you mean `Dense`?"),
        (&net("fc1: Dense { units: 10 }, act: Rleu"), "unknown layer kind `Rleu`; did you mean `Relu`?"),
        (&net("fc1: Dense { units: 10 }, act: relu"), "did you mean `Relu`?"),
        (&net("fc1: Dense { unit: 10 }"), "`Dense` has no option `unit`; did you mean `units`?"),
        (&net("fc1: Dense { units: 10, size: 3 }"), "its options are `units`, `activation` or `bias`"),
        (&net("fc1: Dense { activation: Relu }"), "`Dense` needs the option `units`"),
        (&net("fc1: Dense"), "`Dense` needs the option `units`"),
        (&net("fc1: Dense { units: 10, units: 10 }"), "option `units` is given twice"),
        (&net("fc1: Dense { units: 0 }"), "`units` must be at least 1"),
        (&net("fc1: Dense { units: -3 }"), "`units` must be at least 1, found -3"),
        (&net("fc1: Dense { units: 2.5 }"), "`units` must be a whole number, found 2.5"),
        (&net("fc1: Dense { units: Relu }"), "`units` expects a whole number, found `Relu`"),
        (&net("fc1: Dense { units: 10 }, d: Dropout { rate: 1.5 }"), "`rate` must be in [0, 1), found 1.5"),
        (&net("fc1: Dense { units: 10 }, d: Dropout { rate: -0.5 }"), "`rate` must be in [0, 1), found -0.5"),
        (&net("fc1: Dense { units: 10 }, d: Dropout { rate: 1 }"), "`rate` must be in [0, 1), found 1"),
        (&net("fc1: Dense { units: 10 }, d: Dropout { rate: \"x\" }"), "`rate` expects a number"),
        (&net("fc1: Dense { units: 10, bias: 1 }"), "`bias` expects `true` or `false`, found `1`"),
        (&net("fc1: Dense { units: 10, activation: Rellu }"), "unknown activation `Rellu`; did you mean `Relu`?"),
        (&net("fc1: Dense { units: 10, activation: Relu(2) }"), "`Relu` takes no argument"),
        (&net("fc1: Dense { units: 10, activation: Elu(1, 2) }"), "`Elu` takes one argument"),
        (&net("fc1: Dense { units: 10, activation: 3 }"), "`activation` expects an activation"),
        (&net("fc1: Dense { units: 10 }, act: Relu { alpha: 0.1 }"), "`Relu` has no option `alpha`"),
        (&net("fc1: Dense { units: 10 }, act: LeakyRelu { alpha: 1e39 }"), "`alpha` must be a finite `f32`"),
        (&net("fc1: Dense { units: 10 }, e: Encoder { x: 1 }"), "a network used as a layer takes no options"),
        ("pub struct Net: [64] -> [10] {}", "`Net` has no layers"),
        (
            "pub struct Net: [1, 8, 8] -> [10] { fc1: Dense { units: 10 } }",
            "`fc1` (`Dense`) takes a vector, but the input of `Net` is [1, 8, 8]; add `Flatten` before `fc1`",
        ),
        ("pub struct Net: [4, 8] -> [10] { act: Relu, fc1: Dense { units: 10 } }", "but `act` produces [4, 8]"),
        ("pub struct Net: [1, 2, 3, 4] -> [10] { fc1: Dense { units: 10 } }", "a shape has 1 to 3 dimensions"),
        ("pub struct Net: [] -> [10] { fc1: Dense { units: 10 } }", "found 0"),
        ("pub struct Net: [0] -> [10] { fc1: Dense { units: 10 } }", "a dimension must be at least 1"),
        ("pub struct Net: [18446744073709551615, 2] -> [10] { fc1: Dense { units: 10 } }", "more elements than fit"),
        ("pub struct Net<T>: [64] -> [10] { fc1: Dense { units: 10 } }", "cannot have generic parameters"),
        ("pub struct Net: [64] [10] { fc1: Dense { units: 10 } }", "expected `->`"),
        ("pub struct Net [64] -> [10] { fc1: Dense { units: 10 } }", "expected `:`"),
        ("pub struct Net: [n] -> [10] { fc1: Dense { units: 10 } }", "shape dimensions are integer literals"),
        (&net("type: Dense { units: 10 }"), "`type` is a keyword; name the layer `r#type`"),
        (&net("fc1 Dense { units: 10 }"), "expected `:` and a layer kind after the layer name `fc1`"),
        (&net("fc1: Dense { units: 32 } fc2: Dense { units: 10 }"), "expected `,` between layers"),
        (&net("fc1: Dense { units 10 }"), "expected `:` and a value after the option `units`"),
        (&net("fc1: Dense { units: 10 }, d: Dropout { rate: - }"), "expected a number after `-`"),
        ("pub enum Net {}", "expected `struct Name: [input] -> [output] { layers }`"),
        (
            "pub struct Net: [4, 3] -> [8] { g: Gru { units: 8, merge: Sum } }",
            "`merge: Sum` combines the two directions of a bidirectional layer; add `bidirectional: true`",
        ),
        (&net("enc: Dense { units: 10 }, dec: Dense { tied: enc }"), "is written in the graph form"),
        (&net("input x; h = fc(x): Dense { units: 10 }; output h;"), "write `graph` after the output shape"),
        (&net("fc1: Dense(10)"), "`Dense` takes its options by name, in braces"),
        (&net("fc1: Dense { units: 10 }, act: Relu(0.1)"), "`Relu` takes no options; remove the parentheses"),
        (&net("fc1: Dense { units: 10 }, e: Encoder(3)"), "a network used as a layer takes no arguments"),
        (
            &net("act: LeakyRelu(alpha: 0.1)"),
            "a value in parentheses is given without its name: `LeakyRelu(..)`, or by name in braces, \
             `LeakyRelu { alpha: .. }`",
        ),
        (&net("fc: Dense { units: 10, activation: Elu { alpa: 1.0 } }"), "expected `alpha`, the one option"),
        (&net("fc: Dense { units: 10, tied: enc }"), "(`tied: enc`) is written in the graph form"),
        (
            "pub struct Net: [4, 3] -> [8] { g: Gru { units: 8, bidirectional: BOTH } }",
            "`bidirectional` expects `true` or `false`",
        ),
        (
            "pub struct Net: [1, 8, 8] -> [8, 3, 3] { c: Conv2d { filters: 8, kernel: 3, stride: STRIDE } }",
            "`stride` of `Conv2d` must be a literal whole number (the macro computes the shapes from it); of its \
             options, `filters` and `kernel` accept a `const` item",
        ),
    ];
    for (source, expected) in cases {
        let message = error(source);
        assert!(message.contains(expected), "{source}\n  gave: {message}\n  expected: {expected}");
    }
}

#[test]
fn a_duplicate_name_points_at_both_uses() {
    let all = messages(&net("fc1: Dense { units: 10 }, fc1: Relu, fc1: Tanh"));
    assert_eq!(all, ["layer name `fc1` is used twice", "`fc1` is first used here", "layer name `fc1` is used twice"]);
}

#[test]
fn every_error_of_an_invocation_is_reported_once() {
    let all = messages(
        "pub struct A: [64] -> [10] {
             fc1: Dense { unit: 32 },
             drop: Dropout { rate: 2 },
             fc2: Dense { units: 10, activation: Rellu },
             fc2: Relu,
             fc3: Dense { units: 11 } => [12],
         }
         pub struct B: [64] -> [10] {
             fc1 Dense,
             fc2: Dense { units: 10 }
         }
         pub struct C: [64] -> [10] { fc1: Dense { units: 10 } }",
    );
    assert_eq!(
        all,
        [
            // B's syntax error comes first: parsing reports before checking.
            "expected `:` and a layer kind after the layer name `fc1`",
            // A: each mistake once; nothing after `fc1` depends on its missing
            // `units`, `fc3`'s output is still checked.
            "`Dense` has no option `unit`; did you mean `units`?",
            "`rate` must be in [0, 1), found 2",
            "unknown activation `Rellu`; did you mean `Relu`?",
            "layer name `fc2` is used twice",
            "`fc2` is first used here",
            "`fc3` produces [11], not [12]",
            "`A` declares output [10] but its last layer `fc3` produces [11]",
        ]
    );
}

#[test]
fn an_unknown_shape_stops_shape_checks_but_not_option_checks() {
    let all = messages(&net("x: Nope { a: 1 }, act: Relu => [3], fc: Dense { units: 0 }"));
    assert_eq!(all.len(), 2, "{all:?}");
    assert!(all[0].starts_with("unknown layer kind `Nope`"));
    assert_eq!(all[1], "`units` must be at least 1, found 0");
}

#[test]
fn suggestions_allow_one_edit_or_a_swap() {
    use crate::suggest::{closest, edit_distance, loose_distance};
    assert_eq!(edit_distance("Rleu", "Relu"), 1);
    assert_eq!(edit_distance("Dens", "Dense"), 1);
    assert_eq!(edit_distance("", "abc"), 3);
    assert_eq!(edit_distance("kitten", "sitting"), 3);
    assert_eq!(loose_distance("DENSE", "Dense"), 0);
    let kinds = || crate::kinds::names();
    assert_eq!(closest("Dropot", kinds()), Some("Dropout"));
    assert_eq!(closest("Cnv2d", kinds()), Some("Conv2d"));
    assert_eq!(closest("Resnet", kinds()), None);
    assert_eq!(closest("Encoder", kinds()), None);
}

#[test]
fn the_kind_table_is_consistent() {
    let kinds = crate::kinds::KINDS;
    for (i, kind) in kinds.iter().enumerate() {
        assert!(kinds[..i].iter().all(|k| k.name != kind.name), "{} twice", kind.name);
        for (j, option) in kind.options.iter().enumerate() {
            assert!(kind.options[..j].iter().all(|o| o.name != option.name));
        }
        // Every kind with only optional options works bare on a `[2, 3]` input unless it
        // declares another input rank (the declared output is what its shape function
        // gives).
        if kind.options.iter().all(|o| o.default.is_some()) {
            let mut args = crate::kinds::Args::default();
            kind.options.iter().for_each(|o| args.set(o.name, o.default.unwrap()));
            let input = crate::ir::ShapeInfo::Known(vec![2, 3]);
            let output = match (kind.shape)(&args, &input) {
                Ok(crate::ir::ShapeInfo::Known(dims)) => crate::suggest::dims(&dims),
                _ => String::from("[2, 3]"),
            };
            let source = format!("struct N: [2, 3] -> {output} {{ x: {} }}", kind.name);
            let result = pipeline::check(tokens(&source));
            assert_eq!(result.is_ok(), kind.input_rank.as_ref().is_none_or(|r| r.rank == 2), "{source}");
        }
    }
}

/// The expansion of `source` as Rust items.
fn expansion(source: &str) -> syn::File {
    let out = pipeline::network(tokens(source));
    syn::parse2(out.clone()).unwrap_or_else(|e| panic!("expansion does not parse: {e}\n{out}"))
}

#[test]
fn the_expansion_follows_the_handwritten_reference() {
    let file = expansion(
        "/// 64 -> 32 -> 10.
         pub struct Mlp: [64] -> [10] {
             fc1: Dense { units: 32, activation: Relu },
             drop: Dropout { rate: 0.2 },
             fc2: Dense { units: 10 },
         }",
    );
    let text = quote::quote!(#file).to_string().replace(' ', "");
    for expected in [
        "#[derive(Clone,Copy,Debug,Default)]pubstructMlp;",
        "type__NnArch=::nn_core::__private::Chain<::nn_core::__private::Named<::nn_core::layers::Dense<64,32>>,\
         ::nn_core::__private::Chain<::nn_core::__private::Named<::nn_core::layers::Dropout<::nn_core::Shape1<32>>>,\
         ::nn_core::__private::Named<::nn_core::layers::Dense<32,10>>>>;",
        "::nn_core::__private::Named{name:\"fc1\",layer:::nn_core::layers::Dense::new(::nn_core::Activation::Relu)}",
        "::nn_core::layers::Dropout::new(0.2f32)",
        "implnn_core::LayerforMlp",
        "constKIND:&'staticstr=\"Mlp\";",
        "constON_STACK:usize=::nn_core::__private::stack_scratch_len(<Mlpas::nn_core::Layer>::VALUE_SCRATCH,\
         <Mlpas::nn_core::Network>::STACK_BOUND_BYTES,);",
        "letmutstack=[0.0f32;ON_STACK];",
    ] {
        let expected = expected.replace("implnn_core", "impl::nn_core");
        assert!(text.contains(&expected), "missing {expected}\nin {text}");
    }
    assert!(!text.contains("compile_error"));
}

#[test]
fn a_network_with_errors_expands_to_a_stub_and_the_errors() {
    let file = expansion(&net("fc1: Dense { units: 0 }"));
    let text = quote::quote!(#file).to_string().replace(' ', "");
    assert!(text.contains("pubstructNet;"));
    assert!(text.contains("typeInput=::nn_core::Shape1<64>;"));
    assert!(text.contains("typeOutput=::nn_core::Shape1<10>;"));
    assert!(text.contains("constPARAMS:usize=0;"));
    assert!(text.contains("compile_error"));
    assert!(!text.contains("__NnArch"));
}

#[test]
fn opaque_shapes_become_type_level_checks() {
    let file = expansion(
        "pub struct Net: [64] -> [10] {
             encoder: Encoder,
             act: Relu => [16],
             fc: Dense { units: 10 },
         }",
    );
    let text = quote::quote!(#file).to_string().replace(' ', "");
    for expected in [
        "::nn_core::__private::Fit<::nn_core::Shape1<64>,Encoder>",
        "::nn_core::__private::Fit::new(Encoder)",
        "::nn_core::layers::Act<<Encoderas::nn_core::Layer>::Output>",
        "::nn_core::layers::Dense<{<<Encoderas::nn_core::Layer>::Outputas::nn_core::Shape>::LEN},10>",
        "shapemismatch:`encoder`(`Encoder`)takes`{Expected}`butthe input",
        "`act`produces`{Self}`,not[16]",
        "`fc`(`Dense`)takesavector,but`act`produces`{Self}`",
    ] {
        let expected = expected.replace(' ', "");
        assert!(text.contains(&expected), "missing {expected}\nin {text}");
    }
}

/// A small deterministic generator (xorshift64*).
struct Rand(u64);

impl Rand {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const SEEDS: &[&str] = &[
    "/// Doc.
     #[allow(dead_code)]
     pub struct DigitMlp: [64] -> [10] {
         fc1: Dense { units: 64, activation: Relu },
         act: LeakyRelu { alpha: 0.2 },
         drop: Dropout { rate: 0.2 } => [64],
         fc2: Dense { units: 10, activation: LeakyRelu(0.1), bias: false },
     }",
    "pub struct Enc: [4, 8] -> [4, 8] { a: Tanh, b: Softmax, c: Elu { alpha: -1 } }
     pub(crate) struct Net: [4, 8] -> [3] { enc: Enc, fc: Dense { units: 3 } => [3] }",
    "struct A: [1, 8, 8] -> [10] { e: self::Tower<3>, g: Gelu, s: Sigmoid, i: Identity, r#type: Dense { units: 10 } }",
];

const VOCABULARY: &str = "Dense Dropout Relu Rleu LeakyRelu Elu Gelu Softmax Identity Tanh Sigmoid Flatten
    units rate alpha activation bias struct pub crate self super r#type Net Encoder fc1 fc2 x _
    true false 0 1 2 64 -1 1.5 0.2 1e40 0x10 18446744073709551616 \"s\" 'c' b'x'
    , , , : : :: -> => - > < = # ! ; . ..
    {} [] () { units: 3 } [1, 2] [0] (0.3) #[doc = \"x\"]";

/// Applies one random edit somewhere in `tokens`, descending into groups.
fn mutate(tokens: &mut Vec<TokenTree>, vocabulary: &[TokenTree], rand: &mut Rand) {
    let groups: Vec<usize> = (0..tokens.len()).filter(|&i| matches!(tokens[i], TokenTree::Group(_))).collect();
    if !groups.is_empty() && rand.below(3) > 0 {
        let i = groups[rand.below(groups.len())];
        if let TokenTree::Group(g) = &tokens[i] {
            let mut inner: Vec<TokenTree> = g.stream().into_iter().collect();
            mutate(&mut inner, vocabulary, rand);
            let mut group = Group::new(g.delimiter(), inner.into_iter().collect());
            group.set_span(g.span());
            tokens[i] = TokenTree::Group(group);
        }
        return;
    }
    let pick = |rand: &mut Rand| vocabulary[rand.below(vocabulary.len())].clone();
    let at = rand.below(tokens.len() + 1);
    match rand.below(5) {
        0 if at < tokens.len() => {
            tokens.remove(at);
        }
        1 if at < tokens.len() => tokens[at] = pick(rand),
        2 if at + 1 < tokens.len() => tokens.swap(at, at + 1),
        3 if at < tokens.len() => {
            let end = (at + 1 + rand.below(4)).min(tokens.len());
            let copy: Vec<TokenTree> = tokens[at..end].to_vec();
            tokens.splice(at..at, copy);
        }
        _ => tokens.insert(at, pick(rand)),
    }
}

/// A random stream of vocabulary tokens.
fn random_stream(vocabulary: &[TokenTree], rand: &mut Rand) -> TokenStream {
    (0..rand.below(24)).map(|_| vocabulary[rand.below(vocabulary.len())].clone()).collect()
}

/// Runs the pipeline on `cases` inputs from a generator seeded with `seed`; returns
/// how many were valid and invalid.
fn fuzz(seed: u64, cases: usize) -> (usize, usize) {
    // Token streams are not `Send`: each worker lexes its own.
    let vocabulary: Vec<TokenTree> = tokens(VOCABULARY).into_iter().collect();
    let seeds: Vec<Vec<TokenTree>> = SEEDS.iter().map(|s| tokens(s).into_iter().collect()).collect();
    let mut rand = Rand(seed);
    let (mut valid, mut invalid) = (0, 0);
    for case in 0..cases {
        let input: TokenStream = if case % 10 == 0 {
            random_stream(&vocabulary, &mut rand)
        } else {
            let mut tokens = seeds[rand.below(seeds.len())].clone();
            for _ in 0..1 + rand.below(2) {
                mutate(&mut tokens, &vocabulary, &mut rand);
            }
            tokens.into_iter().collect()
        };
        let Ok((out, ok)) = std::panic::catch_unwind(|| pipeline::expand_all(input.clone())) else {
            panic!("case {case} of seed {seed} panicked on input:\n{input}");
        };
        let text = || input.to_string();
        let has_error = out.clone().into_iter().any(|t| matches!(&t, TokenTree::Ident(i) if i == "compile_error"));
        assert_eq!(ok, !has_error, "case {case}: {}\n=> {out}", text());
        // Parsing the expansion back is the slow part: half the valid cases, a sample
        // of the others.
        if (ok && case % 2 == 0) || case % 32 == 0 {
            if let Err(e) = syn::parse2::<syn::File>(out.clone()) {
                panic!("case {case}: expansion does not parse ({e}):\n{}\n=> {out}", text());
            }
        }
        if ok {
            valid += 1;
        } else {
            invalid += 1;
        }
    }
    (valid, invalid)
}

/// The pipeline on 20,000 random and mutated inputs: it returns networks or errors and
/// never panics, its expansion parses as Rust items, and it holds `compile_error!`
/// exactly when there were errors.
#[test]
fn fuzz_the_pipeline_never_panics() {
    for seed in SEEDS {
        assert!(pipeline::check(tokens(seed)).is_ok(), "seed is not valid: {seed}");
    }
    const WORKERS: u64 = 2;
    let results: Vec<(usize, usize)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..WORKERS)
            .map(|w| scope.spawn(move || fuzz(0x9e37_79b9_7f4a_7c15 ^ (w + 1), 20_000 / WORKERS as usize)))
            .collect();
        workers.into_iter().map(|w| w.join().unwrap_or_else(|e| std::panic::resume_unwind(e))).collect()
    });
    let (valid, invalid) = results.iter().fold((0, 0), |(v, i), r| (v + r.0, i + r.1));
    assert_eq!(valid + invalid, 20_000);
    // Both outcomes are exercised.
    assert!(valid > 500 && invalid > 5_000, "valid {valid}, invalid {invalid}");
}

/// A safetensors file: the JSON `header`, then `data`.
fn safetensors_file(header: &str, data: &[u8]) -> Vec<u8> {
    let mut file = (header.len() as u64).to_le_bytes().to_vec();
    file.extend_from_slice(header.as_bytes());
    file.extend_from_slice(data);
    file
}

fn weights_error(file: &[u8]) -> String {
    match crate::weights::read(file, "w.safetensors", proc_macro2::Span::call_site()) {
        Ok(_) => String::new(),
        Err(e) => e.to_string(),
    }
}

#[test]
fn baked_weights_refuse_nan_and_infinity_as_the_loader_does() {
    let header = r#"{"fc.weight":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}"#;
    let data = |bad: f32| [1.0f32, 2.0, 3.0, bad].iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>();
    assert_eq!(weights_error(&safetensors_file(header, &data(4.0))), "");
    assert_eq!(
        weights_error(&safetensors_file(header, &data(f32::NAN))),
        "`w.safetensors`: tensor `fc.weight` (shape [2, 2]) holds NaN at element 3 (index [1, 1]); \
         `include_weights!` bakes finite values only"
    );
    assert!(weights_error(&safetensors_file(header, &data(f32::NEG_INFINITY))).contains("holds -inf at element 3"));
}

#[test]
fn baked_weights_refuse_offsets_that_overflow_without_panicking() {
    // Eight tensors of 2^61 - 1 bytes each pass the header's own checks and end at
    // 2^64 - 8; safetensors 0.8's `SafeTensors::deserialize` adds the header length to
    // that unchecked and panics in builds with overflow checks.
    let size = (1u64 << 61) - 1;
    let tensors: Vec<String> = (0..8)
        .map(|i| {
            format!(r#""w{i}":{{"dtype":"U8","shape":[{size}],"data_offsets":[{},{}]}}"#, i * size, (i + 1) * size)
        })
        .collect();
    let header = format!("{{{}}}", tensors.join(","));
    let message = weights_error(&safetensors_file(&header, &[0; 8]));
    assert!(message.starts_with("`w.safetensors` is not a safetensors file: "), "{message}");
}

/// trybuild compiles `tests/ui/<case>.rs` in a crate it generates under the target
/// directory: the case's weights paths still start from the package holding it.
#[test]
fn weights_paths_start_from_the_package_of_the_calling_file() {
    use crate::weights::base_dir;
    let root = std::env::temp_dir().join(format!("nn-macros-base-dir-{}", std::process::id()));
    let package = root.join("repository");
    let generated = root.join("elsewhere/target/tests/trybuild/repository");
    let out_dir = root.join("elsewhere/target/debug/build/repository-0123/out");
    for dir in [&package.join("tests/ui/weights"), &generated, &out_dir] {
        std::fs::create_dir_all(dir).unwrap();
    }
    // A workspace manifest above the build directory must not be taken for OUT_DIR's.
    for dir in [&package, &generated, &root.join("elsewhere")] {
        std::fs::write(dir.join("Cargo.toml"), "").unwrap();
    }
    let case = package.join("tests/ui/weights/case.rs");
    assert_eq!(base_dir(&generated, Some(&case), None), package);
    assert_eq!(base_dir(&package, Some(&package.join("src/lib.rs")), None), package);
    assert_eq!(base_dir(&package, Some(&out_dir.join("generated.rs")), Some(&out_dir)), package);
    assert_eq!(base_dir(&package, None, None), package);
    // No manifest above the file: the calling crate's.
    assert_eq!(base_dir(&package, Some(Path::new("/nonexistent-dir/file.rs")), None), package);
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn const_items_are_accepted_for_the_sizes_whose_shapes_are_const_expressions() {
    for layers in [
        "fc1: Dense { units: HIDDEN }, fc2: Dense { units: 10 }",
        "fc1: Dense { units: config::HIDDEN }, fc2: Dense { units: OUT }",
    ] {
        let source = net(layers);
        assert!(pipeline::check(tokens(&source)).is_ok(), "{source}");
    }
    let recurrent = "pub struct Net: [6] -> [8] {
        e: Embedding { vocab: VOCAB, dim: DIM },
        s: SequenceDense { units: WIDTH },
        g: Gru { units: UNITS, bidirectional: true, return_sequences: true },
        l: Lstm { units: 8, layers: LAYERS, truncate: TRUNCATE },
    }";
    assert!(pipeline::check(tokens(recurrent)).is_ok());
    let conv = "pub struct Net: [2, 9, 9] -> [3] {
        c: Conv2d { filters: FILTERS, kernel: KERNEL, stride: 2, padding: 1 },
        t: ConvTranspose2d { filters: FILTERS, kernel: KERNEL },
        f: Flatten,
        d: Dense { units: 3 },
    }";
    assert!(pipeline::check(tokens(conv)).is_ok());
}
