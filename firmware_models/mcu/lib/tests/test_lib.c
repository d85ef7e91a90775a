/* Host unit tests of the int8 library on hand-worked cases (the whole model is checked against
 * onnxruntime by tests/mcu). Prints "N passed, M failed"; exit status 1 on any failure. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "es_fomo.h"
#include "es_nn.h"

static int passed, failed;
static int32_t acc[64]; /* output-plane sums for the convolutions */

#define CHECK(cond)                                                      \
    do {                                                                 \
        if (cond) {                                                      \
            passed++;                                                    \
        } else {                                                         \
            failed++;                                                    \
            printf("FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);       \
        }                                                                \
    } while (0)

static es_layer_t conv_layer(int c, int h, int w, int oc, int k, int stride, int pad, int dil, int groups) {
    es_layer_t L;
    memset(&L, 0, sizeof L);
    L.op = ES_OP_CONV;
    L.in_c = c, L.in_h = h, L.in_w = w, L.out_c = oc;
    L.kernel = k, L.stride = stride, L.pad = pad, L.dilation = dil, L.groups = groups;
    L.out_h = (h + 2 * pad - dil * (k - 1) - 1) / stride + 1;
    L.out_w = (w + 2 * pad - dil * (k - 1) - 1) / stride + 1;
    return L;
}

static void test_rounding(void) {
    CHECK(es_round_half_even(0.5f) == 0);
    CHECK(es_round_half_even(1.5f) == 2);
    CHECK(es_round_half_even(2.5f) == 2);
    CHECK(es_round_half_even(-0.5f) == 0);
    CHECK(es_round_half_even(-1.5f) == -2);
    CHECK(es_round_half_even(3.49f) == 3);
    CHECK(es_round_half_even(254.5f) == 254);
    CHECK(es_round_half_even(-134.6f) == -135);
}

static void test_requantize(void) {
    CHECK(es_requantize(10, 0.25f, 0) == 2);      /* 2.5 → 2, ties to even */
    CHECK(es_requantize(14, 0.25f, 0) == 4);      /* 3.5 → 4 */
    CHECK(es_requantize(-100, 0.25f, 0) == 0);    /* ReLU: the clamp at zero point 0 */
    CHECK(es_requantize(100000, 0.25f, 0) == 255);
    CHECK(es_requantize(-100, 0.25f, 135) == 110);
    CHECK(es_requantize(-1000, 0.25f, 135) == 0);
    CHECK(es_multiplier(3, 2) == 0.75f);
    CHECK(es_multiplier(12345678, 34) == ldexpf(12345678.0f, -34));
}

static void test_conv_plain(void) {
    /* 1 channel 3x3 of 1..9, 3x3 kernel of ones, pad 1: each output is its neighbourhood's sum. */
    static const uint8_t in[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    static const int8_t w[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    static const int32_t bias[1] = {0};
    static const int32_t mant[1] = {1};
    static const int8_t shift[1] = {0};
    static const uint8_t want[9] = {12, 21, 16, 27, 45, 33, 24, 39, 28};
    uint8_t out[9];
    es_layer_t L = conv_layer(1, 3, 3, 1, 3, 1, 1, 1, 1);
    L.weights = w, L.bias = bias, L.mult_mant = mant, L.mult_shift = shift;
    es_conv2d(&L, in, out, acc);
    CHECK(memcmp(out, want, 9) == 0);
    /* Input zero point 5: the same picture shifted by 5 reads as the same real values; padding is
     * real 0, so it adds nothing. Bias 100 and multiplier 1/2 → (sum + 100) / 2, ties to even. */
    uint8_t shifted[9];
    for (int i = 0; i < 9; i++) shifted[i] = in[i] + 5;
    static const int32_t bias100[1] = {100};
    static const int32_t half[1] = {1};
    static const int8_t one[1] = {1};
    L.in_zp = 5, L.bias = bias100, L.mult_mant = half, L.mult_shift = one;
    es_conv2d(&L, shifted, out, acc);
    CHECK(out[0] == 56 && out[1] == 60 && out[4] == 72 && out[8] == 64); /* 112/2, 121/2→60, 145/2→72 */
    /* Stride 2 on the same input: the four corners of the padded grid. */
    es_layer_t S = conv_layer(1, 3, 3, 1, 3, 2, 1, 1, 1);
    S.weights = w, S.bias = bias, S.mult_mant = mant, S.mult_shift = shift;
    CHECK(S.out_h == 2 && S.out_w == 2);
    es_conv2d(&S, in, out, acc);
    CHECK(out[0] == 12 && out[1] == 16 && out[2] == 24 && out[3] == 28);
}

static void test_conv_dilated_and_negative_weights(void) {
    /* 5x5 input, dilation 2, pad 2: the centre output sees the corners, the centre and the edge mids. */
    uint8_t in[25];
    for (int i = 0; i < 25; i++) in[i] = (uint8_t)i;
    static const int8_t w[9] = {1, 0, -1, 0, 2, 0, -1, 0, 1};
    static const int32_t bias[1] = {50};
    static const int32_t mant[1] = {1};
    static const int8_t shift[1] = {0};
    uint8_t out[25];
    es_layer_t L = conv_layer(1, 5, 5, 1, 3, 1, 2, 2, 1);
    L.weights = w, L.bias = bias, L.mult_mant = mant, L.mult_shift = shift;
    CHECK(L.out_h == 5 && L.out_w == 5);
    es_conv2d(&L, in, out, acc);
    CHECK(out[12] == 50 + 0 - 4 + 24 - 20 + 24); /* corners 0,4,20,24 with 1,-1,-1,1; centre 12 * 2 */
    CHECK(out[0] == 50 + 0 * 2 + 12 * 1);        /* inside: centre tap (input 0) and bottom-right (input 12) */
}

static void test_conv_depthwise_and_multichannel(void) {
    /* Two channels, 1x1 kernels. Depthwise (groups 2): each output sees only its own channel. */
    static const uint8_t in[8] = {1, 2, 3, 4, 10, 20, 30, 40};
    static const int8_t wd[2] = {3, -1};
    static const int32_t bias[2] = {0, 100};
    static const int32_t mant[2] = {1, 1};
    static const int8_t shift[2] = {0, 0};
    uint8_t out[8];
    es_layer_t D = conv_layer(2, 2, 2, 2, 1, 1, 0, 1, 2);
    D.weights = wd, D.bias = bias, D.mult_mant = mant, D.mult_shift = shift;
    es_conv2d(&D, in, out, acc);
    static const uint8_t want_d[8] = {3, 6, 9, 12, 90, 80, 70, 60};
    CHECK(memcmp(out, want_d, 8) == 0);
    /* Plain (groups 1): each output sums both channels. */
    static const int8_t wp[4] = {1, 1, 2, -1};
    es_layer_t P = conv_layer(2, 2, 2, 2, 1, 1, 0, 1, 1);
    P.weights = wp, P.bias = bias, P.mult_mant = mant, P.mult_shift = shift;
    es_conv2d(&P, in, out, acc);
    static const uint8_t want_p[8] = {11, 22, 33, 44, 92, 84, 76, 68};
    CHECK(memcmp(out, want_p, 8) == 0);
}

static void test_maxpool_and_relu(void) {
    static const uint8_t in[16] = {1, 5, 2, 0, 3, 4, 9, 8, 0, 0, 7, 7, 6, 1, 2, 3};
    uint8_t out[4];
    es_layer_t L = conv_layer(1, 4, 4, 1, 2, 2, 0, 1, 1);
    L.op = ES_OP_MAXPOOL;
    es_maxpool2d(&L, in, out);
    CHECK(out[0] == 5 && out[1] == 9 && out[2] == 6 && out[3] == 7);
    es_layer_t P = conv_layer(1, 4, 4, 1, 3, 2, 1, 1, 1);
    P.op = ES_OP_MAXPOOL;
    CHECK(P.out_h == 2 && P.out_w == 2);
    es_maxpool2d(&P, in, out);
    CHECK(out[0] == 5 && out[1] == 9 && out[2] == 6 && out[3] == 9);
    uint8_t r[4] = {3, 9, 10, 200};
    es_relu(r, 4, 10);
    CHECK(r[0] == 10 && r[1] == 10 && r[2] == 10 && r[3] == 200);
}

/* A 2-class head (background, thing) on a 4x6 grid, no depth-to-space; raw = 255 marks a "thing" cell
 * (probability ~1), 0 a background one. */
static es_head_t head2(int connectivity, int gap_x) {
    es_head_t h;
    memset(&h, 0, sizeof h);
    h.out_scale = 0.1f, h.out_zp = 128, h.block = 1, h.crd = 1, h.n_classes = 2;
    h.grid_h = 4, h.grid_w = 6, h.background = 0, h.threshold = 0.5f;
    h.connectivity[1] = (uint8_t)connectivity;
    h.gap_x[1] = (uint8_t)gap_x;
    return h;
}

static void grid(uint8_t *raw, const char *cells) {
    for (int i = 0; i < 24; i++) {
        raw[i] = cells[i] == '#' ? 0 : 255;      /* background channel */
        raw[24 + i] = cells[i] == '#' ? 255 : 0; /* thing channel */
    }
}

static void test_fomo(void) {
    uint8_t raw[48];
    es_detection_t d[8];
    grid(raw,
         "#....."
         ".#...."
         "......"
         "...#.#");
    es_head_t h8 = head2(8, 0), h4 = head2(4, 0), hgap = head2(8, 1);
    CHECK(es_fomo_decode(&h8, raw, d, 8) == 3); /* diagonal pair joins, two lone cells */
    CHECK(d[0].label == 1 && fabsf(d[0].cx - 1.0f / 6) < 1e-6f && fabsf(d[0].cy - 0.25f) < 1e-6f);
    CHECK(d[0].x1 == 0.0f && d[0].y1 == 0.0f && fabsf(d[0].x2 - 2.0f / 6) < 1e-6f && d[0].y2 == 0.5f);
    CHECK(d[0].score > 0.99f);
    CHECK(es_fomo_decode(&h4, raw, d, 8) == 4); /* 4-connected: the diagonal pair is two */
    CHECK(es_fomo_decode(&hgap, raw, d, 8) == 2); /* gap 1 closes the one-cell hole between the lone cells */
    CHECK(fabsf(d[1].cx - 4.5f / 6) < 1e-6f && fabsf(d[1].x2 - 1.0f) < 1e-6f);
    CHECK(es_fomo_decode(&h8, raw, d, 1) == 1);   /* bounded output */
    /* Probabilities: two equal logits → 0.5 each, which meets a 0.5 threshold (>=). */
    for (int i = 0; i < 48; i++) raw[i] = 128;
    float p[2];
    es_fomo_cell_probs(&h8, raw, 0, 0, p);
    CHECK(p[0] == 0.5f && p[1] == 0.5f);
    CHECK(es_fomo_decode(&h8, raw, d, 8) == 0); /* ties go to the first class: background */
}

static void test_depth_to_space(void) {
    /* 2 classes, block 2, raw 8 channels of 1x1: CRD puts class c's four sub-cells at channels 4c..4c+3. */
    es_head_t h = head2(8, 0);
    h.block = 2, h.grid_h = 2, h.grid_w = 2;
    uint8_t raw[8] = {255, 255, 255, 0, 0, 0, 0, 255};
    es_detection_t d[4];
    CHECK(es_fomo_decode(&h, raw, d, 4) == 1);
    CHECK(fabsf(d[0].cx - 0.75f) < 1e-6f && fabsf(d[0].cy - 0.75f) < 1e-6f);
    h.crd = 0; /* DCR: sub-cell major, so channel 7 is sub-cell 3, class 1 again */
    uint8_t dcr[8] = {255, 0, 255, 0, 255, 0, 0, 255};
    CHECK(es_fomo_decode(&h, dcr, d, 4) == 1);
    CHECK(fabsf(d[0].cx - 0.75f) < 1e-6f && fabsf(d[0].cy - 0.75f) < 1e-6f);
}

int main(void) {
    test_rounding();
    test_requantize();
    test_conv_plain();
    test_conv_dilated_and_negative_weights();
    test_conv_depthwise_and_multichannel();
    test_maxpool_and_relu();
    test_fomo();
    test_depth_to_space();
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
