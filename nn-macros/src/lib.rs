//! The `network!` macro of `nn-core`.
//!
//! The input goes through four phases, each its own module (`pipeline` wires them):
//! `parse` reads the syntax (recovering after a bad layer so that every mistake is
//! reported; `parse_graph` the statements of the graph form), `lower` resolves layer
//! kinds and options against the table in `kinds` and infers every shape (`lower_graph`
//! for statements, resolving the names each uses), `validate` checks the lowered
//! network of either form (declared outputs, assertions, names, unused values), and
//! `expand` writes the Rust items, or a stub
//! when there were errors, so that one mistake gives one diagnostic. Both forms lower to
//! one `ir::Graph` of statements (a sequence is one statement per layer), and `expand`
//! writes every network's `Layer` impl through one function: a graph that is a sequence
//! delegates to a `Chain` of its layers, any other runs its statements
//! (`expand_graph`). `suggest` and `errors` serve the diagnostics.
#![forbid(unsafe_code)]

mod conv_kinds;
mod describe;
mod errors;
mod expand;
mod expand_graph;
mod ir;
mod kinds;
mod lower;
mod lower_graph;
mod multi_io;
mod parse;
mod parse_graph;
mod pipeline;
mod rnn_kinds;
mod suggest;
mod validate;
mod weights;

#[cfg(test)]
mod tests;

/// Declares one or more networks.
///
/// ```text
/// network! {
///     /// Classifies 8x8 digits.
///     pub struct DigitMlp: [64] -> [10] {
///         fc1: Dense { units: 64, activation: Relu },
///         act: LeakyRelu { alpha: 0.2 },
///         drop: Dropout { rate: 0.2 } => [64],
///         fc2: Dense { units: 10 },
///     }
/// }
/// ```
///
/// Each `struct` item declares a network: its attributes and visibility, its input and
/// output shapes (`[features]`, `[time, features]` or `[channels, height, width]`,
/// literal dimensions) and its layers in order. A layer is `name: Kind { options }`
/// (a kind with a single option may take its value in parentheses instead:
/// `LeakyRelu(0.2)` is `LeakyRelu { alpha: 0.2 }`, `Dropout(0.5)` is
/// `Dropout { rate: 0.5 }`), optionally followed by `=> [shape]`, an assertion of its output shape checked at
/// compile time. Layer names become tensor names (`fc1.weight`, `fc1.bias`), as in
/// PyTorch's `state_dict`. Trailing commas are optional.
///
/// The built-in kinds and their options (defaults in parentheses):
///
/// | kind | options | shapes |
/// | --- | --- | --- |
/// | `Dense` | `units` (required, at least 1), `activation` (`Identity`), `bias` (`true`) | `[in] -> [units]` |
/// | `Dropout` | `rate` (required, in `[0, 1)`) | any, preserved |
/// | `FakeQuant` | `momentum` (`0.01`, in `[0, 1)`): int8 fake quantization for quantization-aware training, its range a moving average of the batches' (`nn_core::quant::qat`) | any, preserved |
/// | `Relu`, `Relu6`, `Sigmoid`, `Tanh`, `Softmax`, `Gelu`, `Abs`, `Identity` | none | any, preserved |
/// | `LeakyRelu` | `alpha` (`0.01`) | any, preserved |
/// | `Elu` | `alpha` (`1.0`) | any, preserved |
/// | `Conv2d` | `filters`, `kernel` (required; `3` or `[kh, kw]`), `stride` (`1`), `padding` (`Valid`; `Same`, `n` or `[ph, pw]`), `dilation` (`1`), `groups` (`1`; divides `c` and `filters`, as PyTorch's: `groups: c` is depthwise), `bias` (`true`) | `[c, h, w] -> [filters, oh, ow]` |
/// | `Conv1d` | as `Conv2d`, one number per option | `[c, l] -> [filters, ol]` |
/// | `ConvTranspose2d` | `filters`, `kernel` (required), `stride` (`1`), `padding` (`0`), `output_padding` (`0`), `dilation` (`1`), `bias` (`true`) | `[c, h, w] -> [filters, oh, ow]` |
/// | `MaxPool2d`, `AvgPool2d` | `size` (required), `stride` (the size), `padding` (`0`, at most half the size) | `[c, h, w] -> [c, oh, ow]` |
/// | `MaxPool1d`, `AvgPool1d` | as above, one number each | `[c, l] -> [c, ol]` |
/// | `GlobalAvgPool2d`, `GlobalMaxPool2d` | none | `[c, h, w] -> [c]` |
/// | `GlobalAvgPool1d`, `GlobalMaxPool1d` | none | `[c, l] -> [c]` |
/// | `Upsample` | `scale` (required; `2` or `[sh, sw]`), nearest neighbour | `[c, h, w] -> [c, h * sh, w * sw]` |
/// | `Upsample1d` | `scale` (required) | `[c, l] -> [c, l * scale]` |
/// | `Flatten` | none | any -> `[len]` |
/// | `Reshape` | `shape` (required, as many elements) | any -> `shape` |
/// | `BatchNorm2d` | `momentum` (`0.1`), `eps` (`1e-5`), `inference` (`false`; `true`: evaluation mode whatever the model's `train()`/`eval()`) | `[c, h, w]`, preserved |
/// | `BatchNorm1d` | `momentum` (`0.1`), `eps` (`1e-5`), `inference` (`false`; `true`: evaluation mode whatever the model's `train()`/`eval()`) | `[c]` or `[c, l]`, preserved |
/// | `MultiHeadAttention` | `heads` (required, divides `d`), `causal` (`false`), `dropout` (`0`, on the attention weights) | `[t, d]`, preserved |
/// | `LayerNorm` | `eps` (`1e-5`, positive), over the last dimension | any, preserved |
/// | `PositionalEncoding`, `LearnedPositional` | none (sinusoids; a trained `weight [t, d]`) | `[t, d]`, preserved |
/// | `FeedForward` | `units` (required), `activation` (`Relu`), `dropout` (`0`) | `[t, d]`, preserved |
/// | `TransformerEncoderLayer` | `heads`, `ff` (required), `norm_first` (`false`), `activation` (`Relu`), `dropout` (`0.1`), `causal` (`false`), `eps` (`1e-5`) | `[t, d]`, preserved |
/// | `TransformerEncoder` | as `TransformerEncoderLayer`, and `layers` (`1`) | `[t, d]`, preserved |
/// | `SimpleRnn` | `units` (required), `activation` (`Tanh`; or `Relu`), `layers` (`1`, stacked), `return_sequences` (`false`), `bidirectional` (`false`), `merge` (`Concat`; `Sum`, `Mean` or `Multiply`; only with `bidirectional: true`), `truncate` (`0`: backpropagation through the whole sequence; `n`: through chunks of `n` steps) | `[t, f] -> [w]`, or `[t, w]` with `return_sequences` |
/// | `Lstm`, `Gru` | as `SimpleRnn`, without `activation` | as `SimpleRnn`; in the graph form also the initial state taken (`gru(x, h0)`, `lstm(x, h0, c0)`) and the final state returned (`(y, h) = gru(x)`, `(y, h, c) = lstm(x)`, `SimpleRnn` as `Gru`), each `[layers * directions, units]` (see below) |
/// | `Embedding` | `vocab`, `dim` (required) | `[t]` token ids `-> [t, dim]`; first, it makes the network take integer ids (`nn_core::tokens`) |
/// | `SequenceDense` | `units` (required), `activation` (`Identity`), `bias` (`true`), a `Dense` applied at every step | `[t, f] -> [t, units]` |
///
/// The width `w` of a recurrent layer is `units`, or `2 units` when
/// `bidirectional: true` concatenates the two directions (the default `merge: Concat`,
/// PyTorch's layout); the other merges keep `units`. Without `return_sequences` the
/// layer returns its last output (Keras's default). `CrossAttention`, whose queries and
/// context are two inputs, is not a kind of `network!`: it is the layer type
/// `nn_core::layers::CrossAttention`, called directly.
///
/// Convolution and pooling sizes follow PyTorch: along each axis the output is
/// `(in + 2 padding - dilation (kernel - 1) - 1) / stride + 1`, and
/// `(in - 1) stride - 2 padding + dilation (kernel - 1) + output_padding + 1` for a
/// transposed convolution. `padding: Same` keeps the size (stride 1 only, as PyTorch;
/// an even kernel pads one more zero after than before).
///
/// An `activation` is one of `Identity`, `Relu`, `Relu6` (`min(max(0, z), 6)`), `LeakyRelu`,
/// `Sigmoid`, `Tanh`, `Softmax`, `Gelu`, `Elu` and `Abs` (`|z|`), with a parameter for `LeakyRelu` and `Elu`: `LeakyRelu(0.2)`,
/// `Elu(1.0)`, or by name as the layer of that kind is written, `LeakyRelu { alpha: 0.2 }`. Numbers may be written as integers or floats, negative where that
/// makes sense.
///
/// These sizes may also be a `const` item, named in upper case as Rust names them
/// (`Dense { units: HIDDEN }` with `const HIDDEN: usize = 32;`, or `config::HIDDEN`):
///
/// | Kind | Options that accept a `const` item |
/// |---|---|
/// | `Dense`, `SequenceDense` | `units` |
/// | `SimpleRnn`, `Lstm`, `Gru` | `units`, `layers`, `truncate` |
/// | `Embedding` | `vocab`, `dim` |
/// | `Conv1d`, `Conv2d`, `ConvTranspose2d` | `filters`, `kernel` (one item for every axis) |
///
/// The macro does not see the item's value, so the shapes after it are `const`
/// expressions checked when the network is compiled, as after a network used as a
/// layer: a declared output or a `=> [..]` assertion that does not match is an error
/// at the declared shape, and a kernel larger than its input an error at the layer.
/// Every other option (strides, paddings, pooling windows, heads, ...) is a literal.
///
/// Any other path without options is a network used as a layer (`encoder: Encoder`):
/// a unit struct implementing `nn_core::Layer`, usually one declared with
/// `network!`. Its tensors are named under the layer's name (`encoder.fc1.weight`).
/// The macro does not see its shapes, so it emits compile-time checks that its input
/// fits the shape before it and that the layers after it fit its output. A network
/// that contains itself, directly or through the other networks of the invocation, is
/// a compile error at the layer that closes the cycle. Through networks of other
/// invocations, which the macro sees only as names, it is one error at compile time
/// (E0080), at the layer that starts the cycle in one of its networks, naming the
/// cycle: ``network `A` contains itself: A -> b: B -> a: A``. Each network that nests
/// networks has a hidden `static` naming them, which a hidden constant walks at compile
/// time; it visits at most 64 networks, and a cycle it does not reach is rustc's cycle
/// error (E0391) over the library's constants. A misspelled name is rustc's
/// "cannot find type" at the layer, which suggests a close name for a network of
/// another `network!` invocation but not for one of the same invocation; the macro
/// does not guess either, since the name may be a type declared elsewhere.
///
/// **Graph form.** With `graph` after the shapes, the body is statements over named
/// values instead of a list of layers:
///
/// ```text
/// network! {
///     pub struct Res: [16] -> [16] graph {
///         input x;
///         h = fc1(x): Dense { units: 16, activation: Relu };
///         y = fc2(h): Dense { units: 16 };
///         out = add(x, y);
///         output out;
///     }
/// }
/// ```
///
/// `input` names the input and `output` the value returned. A statement
/// `value = layer(arg): Kind { options }` declares a layer at its first use;
/// `value = layer(arg)` applies a declared layer again, sharing its parameters (its
/// gradient sums over every use). The merges are `add(a, b, ...)`, `subtract(a, b)`
/// (`a - b`) and `multiply(a, b, ...)` of values of one shape and
/// `concat(a, b, ..., axis: k)`, along axis `k` (default 0) of the sample's shape. `Dense { tied: enc, activation: .. }`
/// multiplies by the transpose of the `Dense` layer `enc`'s weight and adds a bias of
/// its own (`units` is implied). `=> [shape]` after a statement asserts the value's
/// shape (and makes the shape of a network's output known to `concat`). Values must be
/// defined before they are used; a cycle, an unused input or value, a value defined
/// twice and a merge of mismatched shapes are compile errors.
///
/// A recurrent layer starts from zeros, or from an initial state given as more
/// arguments, as PyTorch's `gru(x, h0)` and `lstm(x, (h0, c0))` or Keras's
/// `initial_state=[h, c]`: `y = gru(x, h0)` (`SimpleRnn` and `Gru`: `h0`),
/// `y = lstm(x, h0, c0)` (`Lstm`: `h0` and `c0`). Each state value is
/// `[layers * directions, units]` per sample, PyTorch's `h_0` without its batch
/// dimension (row `l * directions + d` is layer `l`, direction `d`; one layer in one
/// direction also takes `[units]`, as a `Dense` layer or a recurrent layer's last
/// output produce it). A state may be a network input or a value computed by layers
/// (an encoder's final output starting a decoder: `h = enc(src): Gru { units: 8 };
/// y = dec(tgt, h): Gru { units: 8, return_sequences: true };`); the backward pass
/// gives it its gradient, so an encoder-decoder trains end to end, and a state input
/// gets its gradient as any input. `nn_core::layers::state_from_pytorch` and
/// `state_to_pytorch` convert PyTorch's batched `[layers * directions, batch, units]`
/// to and from a state input's batch `[batch, layers * directions, units]`. A state of
/// the wrong shape, a state given to another kind, or an `Lstm` given `h0` alone are
/// compile errors at the call.
///
/// A recurrent layer also returns its final state, as Keras's `return_state=True`
/// and PyTorch's `y, (h_n, c_n) = lstm(x)`, when its statement names more values:
/// `(y, h) = gru(x)` (`SimpleRnn` and `Gru`: `h`), `(y, h, c) = lstm(x)` (`Lstm`: `h`
/// and `c`); `_` discards one, as the encoder's output in a sequence-to-sequence
/// model:
///
/// ```text
/// network! {
///     pub struct Seq2Seq: ([12, 8], [10, 6]) -> [10, 6] graph {
///         input src, tgt;
///         (_, h, c) = enc(src): Lstm { units: 32 };
///         d = dec(tgt, h, c): Lstm { units: 32, return_sequences: true };
///         out = head(d): SequenceDense { units: 6, activation: Softmax };
///         output out;
///     }
/// }
/// ```
///
/// Each state value has the initial state's shape, `[layers * directions, units]` per
/// sample (PyTorch's `h_n` without its batch dimension: for a bidirectional layer,
/// row `l * 2` is layer `l` forward after the last step, row `l * 2 + 1` backward after
/// the first), `[units]` for one layer in one direction. It is an ordinary value: it
/// starts a decoder, feeds layers and merges or is an output, and the gradients flowing
/// into it go back through the layer, so the model trains with `Fit`. Naming `c` for a
/// layer without a cell state, an `Lstm`'s `h` without `c`, or a final state of a
/// layer that is not recurrent (or of a merge) are compile errors at the names.
///
/// A graph may have several inputs and outputs: `([8], [8]) -> ([4], [16])` with
/// `input a, b;` and `output u, v;`. It then implements `nn_core::multi::MultiIo`
/// (its inputs and outputs as tuples of shapes) and `Layer` over the concatenation
/// of its inputs' samples, so that `Model` (`predict_multi`) and `Fit` (with
/// `Dataset::multi` and a loss per output) take it; it also has the passes over
/// arrays of slices as inherent methods and constants (`[&[f32]; 2]` for the inputs).
/// Used as a layer of another network it is one layer of that `Layer`: it takes one
/// value, each sample's inputs one after the other (`pair: Pair` after a `[10]` for
/// `([5], [5])`; in the graph form `ab = concat(a, b); y = pair(ab): Pair;`), and
/// gives its outputs one after the other (`[4 + 8]` for `([4], [8])`). A width that
/// does not match is one error at the layer; `pair(a, b)` is "a layer takes one value".
///
/// Shape mistakes, unknown kinds or options and invalid values are compile errors
/// that point at the offending tokens, all reported at once.
#[proc_macro]
pub fn network(input: proc_macro::TokenStream) -> proc_macro::TokenStream {
    pipeline::network(input.into()).into()
}

/// Evaluates, at compile time, the state array of a network (parameters, then
/// buffers, in `state_dict` order) from a safetensors file: `include_weights!(Net,
/// "path/to/file.safetensors")`, the path relative to the directory of the calling
/// crate's `Cargo.toml` (for a source file outside that directory, such as a trybuild
/// case compiled in a generated crate, the nearest directory above the source file that
/// holds a `Cargo.toml`). The build does not depend on where the target directory is.
///
/// The expansion is an inline `const` block of type `[f32; Net::PARAMS +
/// Net::BUFFERS]`, meant for a `static`, whose values then stay in flash:
///
/// ```text
/// static WEIGHTS: [f32; Net::STATE_LEN] = nn_core::include_weights!(Net, "net.safetensors");
/// static MODEL: Model<Net, &[f32]> = Model::from_static(Net, &WEIGHTS);
/// ```
///
/// A file whose tensors differ from the network's (a missing tensor, a different
/// shape, a tensor the network does not have) is a compile error naming the tensor.
/// The file is read with the parser and default rules of the run-time loader
/// (`nn_core::io::load_safetensors` with `LoadOptions::default()`): tensors must be
/// `F32` and every value finite; a corrupt or malformed file is a compile error, never
/// a panic of the macro.
#[proc_macro]
pub fn include_weights(input: proc_macro::TokenStream) -> proc_macro::TokenStream {
    let caller = proc_macro::Span::call_site().local_file();
    weights::include_weights(input.into(), caller.as_deref()).into()
}
