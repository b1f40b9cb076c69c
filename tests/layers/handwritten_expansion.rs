//! The code `network!` generates for a small network, written out by hand: the
//! reference for the macro's expansion.
use nn_core::prelude::*;

/// 64 -> 32 -> 10.
#[derive(Clone, Copy, Debug, Default)]
pub struct Mlp;

type MlpArch = ::nn_core::__private::Chain<
    ::nn_core::__private::Named<::nn_core::layers::Dense<64, 32>>,
    ::nn_core::__private::Chain<
        ::nn_core::__private::Named<::nn_core::layers::Dropout<::nn_core::Shape1<32>>>,
        ::nn_core::__private::Named<::nn_core::layers::Dense<32, 10>>,
    >,
>;

impl Mlp {
    const ARCH: MlpArch = ::nn_core::__private::Chain {
        first: ::nn_core::__private::Named {
            name: "fc1",
            layer: ::nn_core::layers::Dense::new(::nn_core::Activation::Relu),
        },
        rest: ::nn_core::__private::Chain {
            first: ::nn_core::__private::Named { name: "drop", layer: ::nn_core::layers::Dropout::new(0.2) },
            rest: ::nn_core::__private::Named {
                name: "fc2",
                layer: ::nn_core::layers::Dense::new(::nn_core::Activation::Identity),
            },
        },
    };
}

impl ::nn_core::Layer for Mlp {
    type Input = ::nn_core::Shape1<64>;
    type Output = ::nn_core::Shape1<10>;
    const PARAMS: usize = <MlpArch as ::nn_core::Layer>::PARAMS;
    const BUFFERS: usize = <MlpArch as ::nn_core::Layer>::BUFFERS;
    const CACHE: usize = <MlpArch as ::nn_core::Layer>::CACHE;
    const SCRATCH: usize = <MlpArch as ::nn_core::Layer>::SCRATCH;
    const KIND: &'static str = "Mlp";
    const TENSORS: &'static ::nn_core::weights::TensorTree = &::nn_core::weights::TensorTree::Pair {
        first: &::nn_core::weights::TensorTree::Scope {
            name: "fc1",
            inner: <::nn_core::layers::Dense<64, 32> as ::nn_core::Layer>::TENSORS,
        },
        rest: &::nn_core::weights::TensorTree::Pair {
            first: &::nn_core::weights::TensorTree::Scope {
                name: "drop",
                inner: <::nn_core::layers::Dropout<::nn_core::Shape1<32>> as ::nn_core::Layer>::TENSORS,
            },
            rest: &::nn_core::weights::TensorTree::Scope {
                name: "fc2",
                inner: <::nn_core::layers::Dense<32, 10> as ::nn_core::Layer>::TENSORS,
            },
        },
    };
    fn init(&self, params: &mut [f32], buffers: &mut [f32], rng: &mut ::nn_core::Rng) {
        ::nn_core::Layer::init(&Self::ARCH, params, buffers, rng)
    }
    fn forward(&self, w: ::nn_core::Weights<'_>, x: &[f32], y: &mut [f32], scratch: &mut [f32]) {
        ::nn_core::Layer::forward(&Self::ARCH, w, x, y, scratch)
    }
    fn forward_train(&self, x: &[f32], y: &mut [f32], cx: ::nn_core::TrainCtx<'_>) {
        ::nn_core::Layer::forward_train(&Self::ARCH, x, y, cx)
    }
    fn backward(
        &self,
        x: &[f32],
        y: &[f32],
        dy: &mut [f32],
        dx: ::core::option::Option<&mut [f32]>,
        cx: ::nn_core::BackwardCtx<'_>,
    ) {
        ::nn_core::Layer::backward(&Self::ARCH, x, y, dy, dx, cx)
    }
    fn visit_tensors(
        &self,
        path: ::core::option::Option<&::nn_core::TensorPath<'_>>,
        params_at: usize,
        buffers_at: usize,
        f: &mut dyn FnMut(&::nn_core::TensorInfo<'_>),
    ) {
        ::nn_core::Layer::visit_tensors(&Self::ARCH, path, params_at, buffers_at, f)
    }
    fn visit_summary(&self, _name: &str, depth: usize, f: &mut dyn FnMut(&::nn_core::layer::SummaryRow<'_>)) {
        ::nn_core::Layer::visit_summary(&Self::ARCH, "", depth, f)
    }
    // Batch-1 inference keeps the values on the stack, each in a tensor of its own
    // (`Chain::forward_value`).
    const VALUE_SCRATCH: usize = <MlpArch as ::nn_core::Layer>::VALUE_SCRATCH;
    const VALUE_STACK: usize = <MlpArch as ::nn_core::Layer>::VALUE_STACK;
    const VALUE_LEN: usize = <MlpArch as ::nn_core::Layer>::VALUE_LEN;
    fn forward_value(
        &self,
        w: ::nn_core::Weights<'_>,
        x: &[f32],
        scratch: &mut [f32],
    ) -> ::nn_core::Tensor<Self::Output> {
        ::nn_core::Layer::forward_value(&Self::ARCH, w, x, scratch)
    }
}

impl ::nn_core::Network for Mlp {
    const NAME: &'static str = "Mlp";
    fn forward_one(
        &self,
        params: &[f32],
        buffers: &[f32],
        x: &::nn_core::Tensor<Self::Input>,
    ) -> ::nn_core::Tensor<Self::Output> {
        let mut scratch = [0.0f32; <Mlp as ::nn_core::Layer>::VALUE_SCRATCH];
        ::nn_core::Layer::forward_value(&Self::ARCH, ::nn_core::Weights::new(params, buffers), x, &mut scratch)
    }
}

#[test]
fn handwritten_network_runs() {
    let model = Model::<Mlp>::new(3);
    assert_eq!(Mlp::PARAMS, 64 * 32 + 32 + 32 * 10 + 10);
    let y = model.predict_one(&Tensor::<Shape1<64>>::default());
    assert_eq!(y.len(), 10);
    let mut names = Vec::new();
    model.visit_tensors(&mut |t| names.push((t.path.to_string(), t.shape.to_vec(), t.offset)));
    assert_eq!(
        names,
        vec![
            ("fc1.weight".to_string(), vec![32, 64], 0),
            ("fc1.bias".to_string(), vec![32], 2048),
            ("fc2.weight".to_string(), vec![10, 32], 2080),
            ("fc2.bias".to_string(), vec![10], 2400),
        ]
    );
    // The compile-time description lists the same tensors.
    let tree = Mlp::TENSORS;
    assert_eq!(tree.count(), 4);
    for (k, (name, shape, _)) in names.iter().enumerate() {
        let entry = tree.tensor(k).unwrap();
        assert_eq!((entry.name.as_str(), &entry.shape[..entry.rank]), (name.as_str(), &shape[..]));
    }
    println!("{}", model.summary());
}
