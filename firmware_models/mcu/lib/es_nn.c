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

/* Output columns ox in [first, last) whose input column ox * stride + offset lies inside 0..size-1. */
static void valid_outputs(int offset, int stride, int out_size, int size, int *first, int *last) {
    int o0 = 0, o1 = out_size;
    while (o0 < out_size && o0 * stride + offset < 0) o0++;
    while (o1 > o0 && (o1 - 1) * stride + offset >= size) o1--;
    *first = o0;
    *last = o1;
}

/* One output channel at a time: its whole plane of int32 sums in `acc`, then one kernel tap of one
 * input channel at a time swept over the plane (one weight in a register, a unit-stride inner loop
 * for stride 1), then requantization of the plane. Taps that fall in the padding are skipped. */
void es_conv2d(const es_layer_t *L, const uint8_t *in, uint8_t *out, int32_t *acc) {
    const int k = L->kernel, d = L->dilation, s = L->stride;
    const int in_per_group = L->in_c / L->groups, out_per_group = L->out_c / L->groups;
    const int in_plane = L->in_h * L->in_w, out_plane = L->out_h * L->out_w;
    const int32_t zp = L->in_zp;
    for (int oc = 0; oc < L->out_c; oc++) {
        const int group = oc / out_per_group;
        const int8_t *w_oc = L->weights + (size_t)oc * in_per_group * k * k;
        const uint8_t *in_g = in + (size_t)group * in_per_group * in_plane;
        for (int i = 0; i < out_plane; i++) acc[i] = L->bias[oc];
        for (int ic = 0; ic < in_per_group; ic++) {
            const uint8_t *plane = in_g + (size_t)ic * in_plane;
            for (int ky = 0; ky < k; ky++) {
                int oy0, oy1;
                valid_outputs(ky * d - L->pad, s, L->out_h, L->in_h, &oy0, &oy1);
                for (int kx = 0; kx < k; kx++) {
                    const int32_t w = w_oc[((size_t)ic * k + ky) * k + kx];
                    if (w == 0) continue;
                    int ox0, ox1;
                    valid_outputs(kx * d - L->pad, s, L->out_w, L->in_w, &ox0, &ox1);
                    for (int oy = oy0; oy < oy1; oy++) {
                        const uint8_t *row = plane + (oy * s + ky * d - L->pad) * L->in_w + kx * d - L->pad;
                        int32_t *a = acc + oy * L->out_w;
                        if (s == 1)
                            for (int ox = ox0; ox < ox1; ox++) a[ox] += ((int32_t)row[ox] - zp) * w;
                        else
                            for (int ox = ox0; ox < ox1; ox++) a[ox] += ((int32_t)row[ox * s] - zp) * w;
                    }
                }
            }
        }
        const float mult = es_multiplier(L->mult_mant[oc], L->mult_shift[oc]);
        uint8_t *o = out + (size_t)oc * out_plane;
        for (int i = 0; i < out_plane; i++) o[i] = es_requantize(acc[i], mult, L->out_zp);
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

uint8_t *es_run_layers(const es_layer_t *layers, int count, uint8_t *buf_a, uint8_t *buf_b, int32_t *acc) {
    uint8_t *src = buf_a, *dst = buf_b;
    for (int i = 0; i < count; i++) {
        if (layers[i].op == ES_OP_CONV)
            es_conv2d(&layers[i], src, dst, acc);
        else
            es_maxpool2d(&layers[i], src, dst);
        uint8_t *t = src;
        src = dst;
        dst = t;
    }
    return src;
}
