// A hand-written layer with parameters that neither describes them in
// `Layer::TENSORS` nor implements `Layer::visit_tensors`: visiting its tensors (as
// `state_dict` does) is a compile error that says which of the two to write.
use nn_core::{BackwardCtx, Layer, TrainCtx, Weights};
use nn_core::{Rng, Shape1};

#[derive(Clone, Copy, Default)]
struct Scale;

impl Layer for Scale {
    type Input = Shape1<4>;
    type Output = Shape1<4>;
    const PARAMS: usize = 4;
    const KIND: &'static str = "Scale";

    fn init(&self, params: &mut [f32], _buffers: &mut [f32], _rng: &mut Rng) {
        params.fill(1.0);
    }
    fn forward(&self, w: Weights<'_>, x: &[f32], y: &mut [f32], _scratch: &mut [f32]) {
        for ((y, x), p) in y.iter_mut().zip(x).zip(w.params.iter().cycle()) {
            *y = x * p;
        }
    }
    fn forward_train(&self, x: &[f32], y: &mut [f32], cx: TrainCtx<'_>) {
        self.forward(Weights::new(cx.params, cx.buffers), x, y, cx.scratch)
    }
    fn backward(&self, _x: &[f32], _y: &[f32], _dy: &mut [f32], _dx: Option<&mut [f32]>, _cx: BackwardCtx<'_>) {}
}

fn main() {
    Scale.visit_tensors(None, 0, 0, &mut |_| {});
}
