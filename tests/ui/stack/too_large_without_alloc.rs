// Without `alloc`, the `forward_one` that `network!` writes evaluates this `const` with
// the network's scratch and `STACK_BOUND_BYTES` (here a 3x256x256 convolution's 9.2 MB):
// above `STACK_LIMIT_BYTES` the build stops, naming the alternatives.
const ON_STACK: usize = nn_core::__private::stack_scratch_len_for(false, 2_300_000, 9_200_000);

fn main() {}
