/* The digits classifiers of nn (no-std-check/src/nets.rs) as a C library.
 *
 * Link with libnn_capi.a (cargo build -p nn-capi --release) and, on Linux,
 * -lm -lpthread -ldl. Weights are baked into the library; nothing is allocated.
 * Inputs are 8x8 digits, row-major, pixel values / 16 (so in [0, 1]); outputs are
 * 10 logits, the predicted digit being the largest. The functions are reentrant.
 */
#ifndef NN_DIGITS_H
#define NN_DIGITS_H

#ifdef __cplusplus
extern "C" {
#endif

/* The MLP (64 -> 32 ReLU -> 10): reads in64[0..64], writes out10[0..10].
 * Returns 0, or -1 (writing nothing) if a pointer is NULL. */
int nn_digits_predict(const float *in64, float *out10);

/* The CNN (conv 8x3x3, batch norm, ReLU, max pool 2, dense 10); as above. */
int nn_digits_cnn_predict(const float *in64, float *out10);

#ifdef __cplusplus
}
#endif

#endif /* NN_DIGITS_H */
