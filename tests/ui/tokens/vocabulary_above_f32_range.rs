// Token ids travel as f32, which holds every integer only up to 2^24: reading ids for
// an embedding with a larger vocabulary is a compile error that says why. It is raised
// when the function is instantiated, so the user's line is in the note that follows.
use nn_core::layers::Embedding;
use nn_core::tokens::encode_ids;

fn main() {
    let mut x = [0.0f32; 2];
    let _ = encode_ids::<Embedding<2, 16_777_217, 1>, _>(&[0u32, 1], &mut x);
}
