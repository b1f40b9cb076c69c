//! The graph form of `network!`: residual paths, merges, shared layers and tied
//! weights, checked against finite differences of their own forward pass and against
//! the same computation written with the layers alone.
use crate::standalone::Standalone;
use nn_core::layers::Dense;
use nn_core::prelude::*;
use nn_core::{Rng, Shape};

network! {
    /// A residual block: `x + fc2(fc1(x))`.
    pub struct Residual: [6] -> [6] graph {
        input x;
        h = fc1(x): Dense { units: 5, activation: Tanh };
        r = fc2(h): Dense { units: 6 };
        out = add(x, r);
        output out;
    }
}

network! {
    /// Every merge, a shared layer (applied twice) and a tied layer.
    pub struct Mixed: [4] -> [7] graph {
        input x;
        a = enc(x): Dense { units: 3, activation: Tanh };
        b = shared(a): Dense { units: 3, activation: Sigmoid };
        c = shared(b);
        m = multiply(a, c, b);
        s = add(m, a);
        d = dec(s): Dense { tied: enc, activation: Tanh };
        out = concat(d, c, axis: 0) => [7];
        output out;
    }
}

/// The loss `sum dy * y` of a batch, in f64, through `forward_train`.
fn weighted_output<L: Layer>(layer: &L, params: &[f32], x: &[f32], dy: &[f32]) -> f64 {
    let batch = x.len() / <L::Input as Shape>::LEN;
    let mut y = vec![0.0; batch * <L::Output as Shape>::LEN];
    layer.forward_train(x, &mut y, Standalone::new::<L>(batch, 1).train(params));
    y.iter().zip(dy).map(|(&a, &b)| a as f64 * b as f64).sum()
}

/// The analytic gradients `(dx, dparams)` of `sum dy * y`.
fn gradients<L: Layer>(layer: &L, params: &[f32], x: &[f32], dy: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let batch = x.len() / <L::Input as Shape>::LEN;
    let mut y = vec![0.0; batch * <L::Output as Shape>::LEN];
    let mut s = Standalone::new::<L>(batch, 1);
    layer.forward_train(x, &mut y, s.train(params));
    let mut dx = vec![f32::NAN; x.len()];
    let mut dy = dy.to_vec();
    s.scratch.fill(f32::NAN);
    layer.backward(x, &y, &mut dy, Some(&mut dx), s.backward(params));
    (dx, s.grads)
}

/// Central differences of `f` at every element of `v`, with step `h`.
fn differences(v: &[f32], h: f32, mut f: impl FnMut(&[f32]) -> f64) -> Vec<f64> {
    let mut v = v.to_vec();
    (0..v.len())
        .map(|i| {
            let keep = v[i];
            v[i] = keep + h;
            let up = f(&v);
            v[i] = keep - h;
            let down = f(&v);
            v[i] = keep;
            (up - down) / (2.0 * (h as f64))
        })
        .collect()
}

fn assert_near(what: &str, actual: &[f32], expected: &[f64], abs: f64, rel: f64) {
    assert_eq!(actual.len(), expected.len(), "{what}: lengths");
    for (i, (&a, &e)) in actual.iter().zip(expected).enumerate() {
        assert!((a as f64 - e).abs() <= abs + rel * e.abs(), "{what}[{i}]: {a} against {e}");
    }
}

/// Gradients of a graph network against finite differences of its forward pass.
fn check_gradients<L: Layer>(layer: L, batch: usize, seed: u64) {
    let mut rng = Rng::new(seed);
    let mut params = vec![0.0; L::PARAMS];
    let mut buffers = vec![0.0; L::BUFFERS];
    layer.init(&mut params, &mut buffers, &mut rng);
    // Non-zero biases, so that every parameter matters.
    params.iter_mut().for_each(|p| *p += rng.uniform_in(-0.3, 0.3));
    let x: Vec<f32> = (0..batch * <L::Input as Shape>::LEN).map(|_| rng.uniform_in(-1.0, 1.0)).collect();
    let dy: Vec<f32> = (0..batch * <L::Output as Shape>::LEN).map(|_| rng.uniform_in(-1.0, 1.0)).collect();
    let (dx, grads) = gradients(&layer, &params, &x, &dy);
    let h = 1e-2;
    let expected_dx = differences(&x, h, |x| weighted_output(&layer, &params, x, &dy));
    assert_near("dx", &dx, &expected_dx, 2e-3, 2e-3);
    let expected_grads = differences(&params, h, |p| weighted_output(&layer, p, &x, &dy));
    assert_near("dparams", &grads, &expected_grads, 2e-3, 2e-3);
}

#[test]
fn residual_gradients_match_finite_differences() {
    check_gradients(Residual, 3, 11);
}

#[test]
fn mixed_graph_gradients_match_finite_differences() {
    check_gradients(Mixed, 4, 12);
}

#[test]
fn residual_forward_is_input_plus_the_branch() {
    let model = Model::<Residual>::new(3);
    let x = Tensor::<Shape1<6>>::from([0.5, -0.25, 1.0, 0.0, -1.0, 0.75]);
    let y = model.predict_one(&x);
    // The branch alone, as the two dense layers of the graph.
    let params = model.params();
    let fc1 = Dense::<6, 5>::new(Activation::Tanh);
    let fc2 = Dense::<5, 6>::new(Activation::Identity);
    let (p1, p2) = params.split_at(<Dense<6, 5> as Layer>::PARAMS);
    let mut h = [0.0; 5];
    let mut r = [0.0; 6];
    fc1.forward(nn_core::Weights::new(p1, &[]), &x, &mut h, &mut []);
    fc2.forward(nn_core::Weights::new(p2, &[]), &h, &mut r, &mut []);
    for i in 0..6 {
        assert_eq!(y[i], x[i] + r[i], "element {i}");
    }
}

#[test]
fn graph_tensors_are_named_like_pytorch() {
    let model = Model::<Mixed>::new(1);
    let mut names: Vec<(String, Vec<usize>)> = Vec::new();
    model.visit_tensors(&mut |t| names.push((t.path.to_string(), t.shape.to_vec())));
    assert_eq!(
        names,
        [
            ("enc.weight".to_string(), vec![3, 4]),
            ("enc.bias".to_string(), vec![3]),
            ("shared.weight".to_string(), vec![3, 3]),
            ("shared.bias".to_string(), vec![3]),
            ("dec.bias".to_string(), vec![4]),
        ]
    );
    assert_eq!(Mixed::PARAMS, 12 + 3 + 9 + 3 + 4);
}

network! {
    /// A sequential network using a graph network as a layer.
    pub struct Stacked: [6] -> [3] {
        block: Residual,
        head: Dense { units: 3 },
    }
}

network! {
    /// 6 inputs to 4 features, used inside a graph.
    pub struct Features: [6] -> [4] {
        fc: Dense { units: 4, activation: Tanh },
    }
}

network! {
    /// A graph using a network as a layer twice (shared) and a graph as a layer.
    pub struct Nested: [6] -> [8] graph {
        input x;
        r = block(x): Residual;
        a = features(r): Features => [4];
        b = features(x) => [4];
        out = concat(a, b);
        output out;
    }
}

#[test]
fn nested_networks_gradients_match_finite_differences() {
    check_gradients(Stacked, 2, 13);
    check_gradients(Nested, 3, 14);
}

#[test]
fn nested_tensor_names_and_sizes() {
    let model = Model::<Nested>::new(1);
    let mut names = Vec::new();
    model.visit_tensors(&mut |t| names.push(t.path.to_string()));
    assert_eq!(
        names,
        [
            "block.fc1.weight",
            "block.fc1.bias",
            "block.fc2.weight",
            "block.fc2.bias",
            "features.fc.weight",
            "features.fc.bias"
        ]
    );
    assert_eq!(Nested::PARAMS, Residual::PARAMS + Features::PARAMS);
    assert_eq!(Stacked::PARAMS, Residual::PARAMS + 6 * 3 + 3);
}

#[test]
fn a_graph_network_trains_with_fit() {
    // y = x + c: the residual block's branch learns the constant c.
    let mut rng = Rng::new(5);
    let inputs: Vec<f32> = (0..256 * 6).map(|_| rng.uniform_in(-1.0, 1.0)).collect();
    let targets: Vec<f32> = inputs.iter().enumerate().map(|(i, v)| v + if i % 2 == 0 { 0.5 } else { -0.5 }).collect();
    let data = Dataset::new(inputs, 6, targets, 6).unwrap();
    let mut model = Model::<Residual>::new(2);
    let before = model.evaluate(&data, &MeanSquaredError, &[]).unwrap().loss;
    let mut fit = Fit::new(Adam::new(1e-2), MeanSquaredError).epochs(60).batch_size(32).seed(3);
    fit.run(&mut model, &data, None).unwrap();
    let after = model.evaluate(&data, &MeanSquaredError, &[]).unwrap().loss;
    assert!(after < 0.02 * before, "loss {before} -> {after}");
}

network! {
    /// Two inputs through one shared tower, two outputs.
    pub struct Pair: ([5], [5]) -> ([4], [8]) graph {
        input a, b;
        ea = tower(a): Dense { units: 4, activation: Tanh };
        eb = tower(b);
        product = multiply(ea, eb);
        both = concat(ea, eb);
        output product, both;
    }
}

/// `sum dy0 * y0 + sum dy1 * y1` of [`Pair`] through `forward_train`.
fn pair_loss(params: &[f32], a: &[f32], b: &[f32], dy: (&[f32], &[f32])) -> f64 {
    let batch = a.len() / 5;
    let (mut y0, mut y1) = (vec![0.0; batch * 4], vec![0.0; batch * 8]);
    Pair.forward_train([a, b], [&mut y0, &mut y1], Standalone::new::<Pair>(batch, 1).train(params));
    let dot = |y: &[f32], d: &[f32]| y.iter().zip(d).map(|(&p, &q)| p as f64 * q as f64).sum::<f64>();
    dot(&y0, dy.0) + dot(&y1, dy.1)
}

#[test]
fn several_inputs_and_outputs_match_finite_differences() {
    let batch = 3;
    let mut rng = Rng::new(21);
    let mut params = vec![0.0; Pair::PARAMS];
    Pair.init(&mut params, &mut [], &mut rng);
    params.iter_mut().for_each(|p| *p += rng.uniform_in(-0.3, 0.3));
    let mut draw = |n: usize| -> Vec<f32> { (0..n).map(|_| rng.uniform_in(-1.0, 1.0)).collect() };
    let (a, b, dy0, dy1) = (draw(batch * 5), draw(batch * 5), draw(batch * 4), draw(batch * 8));

    let (mut y0, mut y1) = (vec![0.0; batch * 4], vec![0.0; batch * 8]);
    let mut s = Standalone::new::<Pair>(batch, 1);
    Pair.forward_train([&a, &b], [&mut y0, &mut y1], s.train(&params));
    // Inference gives the same outputs.
    let (mut z0, mut z1) = (vec![0.0; batch * 4], vec![0.0; batch * 8]);
    Pair.forward(nn_core::Weights::new(&params, &[]), [&a, &b], [&mut z0, &mut z1], &mut s.scratch);
    assert_eq!((&z0, &z1), (&y0, &y1));
    // The second output is the two embeddings side by side, the first their product.
    for s in 0..batch {
        for k in 0..4 {
            assert_eq!(y0[s * 4 + k], y1[s * 8 + k] * y1[s * 8 + 4 + k]);
        }
    }

    let (mut da, mut db) = (vec![f32::NAN; a.len()], vec![f32::NAN; b.len()]);
    let (mut g0, mut g1) = (dy0.clone(), dy1.clone());
    s.scratch.fill(f32::NAN);
    Pair.backward([&a, &b], [&y0, &y1], [&mut g0, &mut g1], [Some(&mut da), Some(&mut db)], s.backward(&params));
    let grads = std::mem::replace(&mut s.grads, vec![0.0; Pair::PARAMS]);
    let h = 1e-2;
    let dy = (&dy0[..], &dy1[..]);
    assert_near("da", &da, &differences(&a, h, |a| pair_loss(&params, a, &b, dy)), 2e-3, 2e-3);
    assert_near("db", &db, &differences(&b, h, |b| pair_loss(&params, &a, b, dy)), 2e-3, 2e-3);
    assert_near("dparams", &grads, &differences(&params, h, |p| pair_loss(p, &a, &b, dy)), 2e-3, 2e-3);

    // Without input gradients, the same parameter gradients.
    let (mut g0, mut g1) = (dy0.clone(), dy1.clone());
    Pair.backward([&a, &b], [&y0, &y1], [&mut g0, &mut g1], [None, None], s.backward(&params));
    assert_eq!(s.grads, grads);

    let mut names = Vec::new();
    Pair.visit_tensors(None, 0, 0, &mut |t| names.push(t.path.to_string()));
    assert_eq!(names, ["tower.weight", "tower.bias"]);
}

#[test]
fn summary_rows_list_each_layer_once() {
    let mut rows = Vec::new();
    Mixed.visit_summary("", 0, &mut |r| rows.push((r.name.to_string(), r.kind.to_string(), r.depth, r.params)));
    assert_eq!(
        rows,
        [
            ("enc".to_string(), "Dense".to_string(), 0, 15),
            ("shared".to_string(), "Dense".to_string(), 0, 12),
            ("dec".to_string(), "TiedDense".to_string(), 0, 4),
        ]
    );
    // Nested: one row for the graph, its layers one level deeper.
    let mut nested = Vec::new();
    Stacked.visit_summary("", 0, &mut |r| nested.push((r.name.to_string(), r.depth)));
    assert_eq!(
        nested,
        [("block".to_string(), 0), ("fc1".to_string(), 1), ("fc2".to_string(), 1), ("head".to_string(), 0)]
    );
}

network! {
    /// `subtract` with an input as either operand, a value used by both a `subtract`
    /// and a layer, and `Abs` as a layer and as an activation.
    pub struct Distance: [6] -> [3] graph {
        input x;
        a = left(x): Dense { units: 6, activation: Tanh };
        d = subtract(a, x);
        e = mag(d): Abs;
        s = subtract(e, a);
        t = subtract(x, s);
        out = head(t): Dense { units: 3, activation: Abs };
        output out;
    }
}

network! {
    /// The distance head of a siamese network: `|fa(x) - fb(x)|`.
    pub struct AbsDifference: [4] -> [4] graph {
        input x;
        a = fa(x): Dense { units: 4 };
        b = fb(x): Dense { units: 4 };
        d = subtract(a, b);
        out = abs(d): Abs;
        output out;
    }
}

network! {
    /// `Abs` as a layer of the sequential form and as an activation.
    pub struct Magnitudes: [3] -> [2] {
        mag: Abs,
        fc: Dense { units: 2, activation: Abs },
    }
}

#[test]
fn subtract_and_abs_gradients_match_finite_differences() {
    check_gradients(Distance, 3, 13);
}

#[test]
fn abs_difference_is_the_magnitude_of_the_two_branches_difference() {
    let model = Model::<AbsDifference>::new(5);
    let x = Tensor::<Shape1<4>>::from([0.5, -1.25, 2.0, -0.75]);
    let y = model.predict_one(&x);
    let branch = Dense::<4, 4>::new(Activation::Identity);
    let (pa, pb) = model.params().split_at(<Dense<4, 4> as Layer>::PARAMS);
    let (mut a, mut b) = ([0.0; 4], [0.0; 4]);
    branch.forward(nn_core::Weights::new(pa, &[]), &x, &mut a, &mut []);
    branch.forward(nn_core::Weights::new(pb, &[]), &x, &mut b, &mut []);
    for i in 0..4 {
        assert_eq!(y[i], (a[i] - b[i]).abs(), "element {i}");
    }
}

#[test]
fn abs_is_the_magnitude_in_either_form() {
    let mut model = Model::<Magnitudes>::new(1);
    // fc: weight [[1, -1, 0.5], [0, 0, 1]], bias [-10, 0.25].
    model.params_mut().copy_from_slice(&[1.0, -1.0, 0.5, 0.0, 0.0, 1.0, -10.0, 0.25]);
    let y = model.predict_one(&Tensor::from([-2.0, 3.0, -4.0]));
    // |x| = [2, 3, 4]; |[2 - 3 + 2 - 10, 4 + 0.25]| = [9, 4.25].
    assert_eq!(y, Tensor::from([9.0, 4.25]));
    let mut values = [-1.5, 0.0, -0.0, 2.0, f32::NEG_INFINITY];
    Activation::Abs.apply(&mut values, 5);
    assert_eq!(values, [1.5, 0.0, 0.0, 2.0, f32::INFINITY]);
    assert_eq!(Activation::Abs.derivative(-3.0, 3.0), -1.0);
    assert_eq!(Activation::Abs.derivative(0.0, 0.0), 0.0);
    assert_eq!(Activation::Abs.derivative(0.5, 0.5), 1.0);
}

#[test]
fn a_frozen_layer_of_a_graph_gets_no_gradient_and_the_others_theirs() {
    use nn_core::layer::Frozen;
    let layer = Mixed;
    let batch = 3;
    let mut rng = Rng::new(21);
    let mut params = vec![0.0; Mixed::PARAMS];
    layer.init(&mut params, &mut [], &mut rng);
    let x: Vec<f32> = (0..batch * 4).map(|_| rng.uniform_in(-1.0, 1.0)).collect();
    let dy: Vec<f32> = (0..batch * 7).map(|_| rng.uniform_in(-1.0, 1.0)).collect();
    let (dx, grads) = gradients(&layer, &params, &x, &dy);
    // `shared` (weight and bias: parameters 15 to 27) frozen.
    let shared = 15..27;
    let (mut y, mut s) = (vec![0.0; batch * 7], Standalone::of(&layer, batch, 1));
    layer.forward_train(&x, &mut y, s.train(&params));
    let mut frozen_dx = vec![f32::NAN; x.len()];
    let ranges = [shared.clone()];
    layer.backward(&x, &y, &mut dy.clone(), Some(&mut frozen_dx), s.backward_frozen(&params, Frozen::new(&ranges)));
    let frozen_grads = s.grads;
    assert_eq!(frozen_dx, dx);
    assert!(frozen_grads[shared.clone()].iter().all(|&g| g == 0.0), "{:?}", &frozen_grads[shared.clone()]);
    assert_eq!(frozen_grads[..shared.start], grads[..shared.start]);
    assert_eq!(frozen_grads[shared.end..], grads[shared.end..]);
}

network! {
    /// [`Pair`] (two inputs, two outputs) used as one layer: it takes each sample's
    /// inputs one after the other (`[5 + 5]`) and gives its outputs one after the
    /// other (`[4 + 8]`).
    pub struct PairInside: [10] -> [3] {
        pair: Pair,
        head: Dense { units: 3 },
    }
}

#[test]
fn a_network_with_several_inputs_and_outputs_is_a_layer_over_their_concatenation() {
    let model = Model::<PairInside>::new(4);
    let (p_pair, p_head) = model.params().split_at(Pair::PARAMS);
    let pair = Model::<Pair>::from_state(Pair, p_pair.to_vec()).unwrap();
    let mut rng = Rng::new(5);
    let (a, b): (Vec<f32>, Vec<f32>) =
        ((0..10).map(|_| rng.normal()).collect(), (0..10).map(|_| rng.normal()).collect());
    let (u, v) = pair.predict_multi((&a, &b)).unwrap();
    // Two samples, each `a` then `b`.
    let x: Vec<f32> = [&a[..5], &b[..5], &a[5..], &b[5..]].concat();
    let y = model.predict(&x).unwrap();
    for s in 0..2 {
        let hidden = [&u[s * 4..(s + 1) * 4], &v[s * 8..(s + 1) * 8]].concat();
        let expected: Vec<f32> = (0..3)
            .map(|o| {
                let row = &p_head[o * 12..(o + 1) * 12];
                row.iter().zip(&hidden).map(|(w, h)| w * h).sum::<f32>() + p_head[36 + o]
            })
            .collect();
        for (got, want) in y[s * 3..(s + 1) * 3].iter().zip(&expected) {
            assert!((got - want).abs() <= 1e-5 * want.abs().max(1.0), "sample {s}: {got} vs {want}");
        }
    }
    check_gradients(PairInside, 2, 15);
}
