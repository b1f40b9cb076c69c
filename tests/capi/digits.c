/* Reads n digits (64 floats each, native byte order) from argv[1], runs the MLP and
 * the CNN of libnn_capi on each, writes n * 20 floats (10 MLP logits, 10 CNN logits
 * per digit) to argv[2]. Exit status 0 on success. */
#include <stdio.h>
#include "nn_digits.h"

int main(int argc, char **argv) {
    if (argc != 3) return 2;
    FILE *in = fopen(argv[1], "rb");
    FILE *out = fopen(argv[2], "wb");
    if (!in || !out) return 3;
    float x[64], y[10];
    size_t n = 0;
    while (fread(x, sizeof(float), 64, in) == 64) {
        if (nn_digits_predict(x, y) != 0 || fwrite(y, sizeof(float), 10, out) != 10) return 4;
        if (nn_digits_cnn_predict(x, y) != 0 || fwrite(y, sizeof(float), 10, out) != 10) return 5;
        n++;
    }
    if (nn_digits_predict(NULL, y) != -1) return 6;
    fclose(in);
    return fclose(out) == 0 && n > 0 ? 0 : 7;
}
