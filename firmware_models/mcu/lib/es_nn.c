/* edgesight int8 ops; see es_nn.h for the arithmetic they promise. */
#include "es_nn.h"

#include <math.h>

float es_multiplier(int32_t mantissa, int8_t shift) {
    return ldexpf((float)mantissa, -(int)shift); /* both exact: a 24-bit mantissa fits a float */
}

void es_quantize_input(const uint8_t *pixels, size_t n, const uint8_t lut[256], uint8_t *out) {
    for (size_t i = 0; i < n; i++) out[i] = lut[pixels[i]];
}

/* First and one-past-last kernel tap whose input row (or column) lies inside 0..size-1. */
static void valid_taps(int origin, int dilation, int kernel, int size, int *first, int *last) {
    int k0 = 0, k1 = kernel;
    while (k0 < kernel && origin + k0 * dilation < 0) k0++;
    while (k1 > k0 && origin + (k1 - 1) * dilation >= size) k1--;
    *first = k0;
    *last = k1;
}

void es_conv2d(const es_layer_t *L, const uint8_t *in, uint8_t *out) {
    const int k = L->kernel, d = L->dilation;
    const int in_per_group = L->in_c / L->groups, out_per_group = L->out_c / L->groups;
    const int in_plane = L->in_h * L->in_w;
    const int32_t zp = L->in_zp;
    for (int oc = 0; oc < L->out_c; oc++) {
        const int group = oc / out_per_group;
        const int8_t *w_oc = L->weights + (size_t)oc * in_per_group * k * k;
        const uint8_t *in_g = in + (size_t)group * in_per_group * in_plane;
        const float mult = es_multiplier(L->mult_mant[oc], L->mult_shift[oc]);
        for (int oy = 0; oy < L->out_h; oy++) {
            const int iy0 = oy * L->stride - L->pad;
            int ky0, ky1;
            valid_taps(iy0, d, k, L->in_h, &ky0, &ky1);
            for (int ox = 0; ox < L->out_w; ox++) {
                const int ix0 = ox * L->stride - L->pad;
                int kx0, kx1;
                valid_taps(ix0, d, k, L->in_w, &kx0, &kx1);
                int32_t acc = L->bias[oc];
                /* Padding is the zero point, i.e. real 0: taps outside the input add nothing. */
                for (int ic = 0; ic < in_per_group; ic++) {
                    const uint8_t *plane = in_g + (size_t)ic * in_plane;
                    const int8_t *w = w_oc + (size_t)ic * k * k;
                    for (int ky = ky0; ky < ky1; ky++) {
                        const uint8_t *row = plane + (iy0 + ky * d) * L->in_w + ix0;
                        const int8_t *wr = w + ky * k;
                        for (int kx = kx0; kx < kx1; kx++) acc += ((int32_t)row[kx * d] - zp) * wr[kx];
                    }
                }
                out[((size_t)oc * L->out_h + oy) * L->out_w + ox] = es_requantize(acc, mult, L->out_zp);
            }
        }
    }
}

void es_maxpool2d(const es_layer_t *L, const uint8_t *in, uint8_t *out) {
    const int k = L->kernel;
    for (int c = 0; c < L->in_c; c++) {
        const uint8_t *plane = in + (size_t)c * L->in_h * L->in_w;
        for (int oy = 0; oy < L->out_h; oy++) {
            const int iy0 = oy * L->stride - L->pad;
            int ky0, ky1;
            valid_taps(iy0, 1, k, L->in_h, &ky0, &ky1);
            for (int ox = 0; ox < L->out_w; ox++) {
                const int ix0 = ox * L->stride - L->pad;
                int kx0, kx1;
                valid_taps(ix0, 1, k, L->in_w, &kx0, &kx1);
                uint8_t best = 0;
                for (int ky = ky0; ky < ky1; ky++)
                    for (int kx = kx0; kx < kx1; kx++) {
                        uint8_t v = plane[(iy0 + ky) * L->in_w + ix0 + kx];
                        if (v > best) best = v;
                    }
                out[((size_t)c * L->out_h + oy) * L->out_w + ox] = best;
            }
        }
    }
}

void es_relu(uint8_t *data, size_t n, uint8_t zero_point) {
    for (size_t i = 0; i < n; i++)
        if (data[i] < zero_point) data[i] = zero_point;
}

uint8_t *es_run_layers(const es_layer_t *layers, int count, uint8_t *buf_a, uint8_t *buf_b) {
    uint8_t *src = buf_a, *dst = buf_b;
    for (int i = 0; i < count; i++) {
        if (layers[i].op == ES_OP_CONV)
            es_conv2d(&layers[i], src, dst);
        else
            es_maxpool2d(&layers[i], src, dst);
        uint8_t *t = src;
        src = dst;
        dst = t;
    }
    return src;
}
