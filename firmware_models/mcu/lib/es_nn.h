/* edgesight int8 inference for microcontrollers: the few ops our FOMO students use.
 *
 * Our own int8 math: no int8 NN library for Cortex-M (CMSIS-NN, TFLite Micro) is packaged where this
 * project builds, so these loops are written for clarity and checked bit for bit against onnxruntime.
 * Layout is CHW (NCHW without the batch), activations uint8 with a zero point, weights symmetric int8
 * per output channel, biases int32, requantization as onnxruntime's QLinearConv does it: the int32 sum
 * times a float32 multiplier, rounded half to even, plus the output zero point, clamped to 0..255.
 */
#ifndef ES_NN_H
#define ES_NN_H

#include <stddef.h>
#include <stdint.h>

enum { ES_OP_CONV = 1, ES_OP_MAXPOOL = 2 };

typedef struct {
    uint8_t op;
    uint16_t in_c, in_h, in_w;
    uint16_t out_c, out_h, out_w;
    uint8_t kernel, stride, pad, dilation;
    uint16_t groups; /* 1: plain conv; in_c == out_c == groups: depthwise */
    uint8_t in_zp, out_zp;
    const int8_t *weights;      /* [out_c][in_c / groups][kernel][kernel] */
    const int32_t *bias;        /* [out_c] */
    const int32_t *mult_mant;   /* [out_c] multiplier = mult_mant * 2^-mult_shift, exact in float32 */
    const int8_t *mult_shift;   /* [out_c] */
} es_layer_t;

/* round(x) with ties to even, for |x| < 2^22 (what onnxruntime's float → int conversion does). */
static inline int32_t es_round_half_even(float x) {
    const float magic = 12582912.0f; /* 1.5 * 2^23: the sum keeps no fraction bits */
    float r = (x + magic) - magic;
    return (int32_t)r;
}

/* int32 accumulator → uint8 activation: float32 product, clamp, round half to even, add zero point. */
static inline uint8_t es_requantize(int32_t acc, float multiplier, uint8_t zero_point) {
    float f = (float)acc * multiplier;
    float lo = -(float)zero_point, hi = 255.0f - (float)zero_point;
    if (f < lo) f = lo;
    if (f > hi) f = hi;
    return (uint8_t)(es_round_half_even(f) + zero_point);
}

/* The float32 multiplier of one output channel, rebuilt exactly from its mantissa and shift. */
float es_multiplier(int32_t mantissa, int8_t shift);

/* Pixels (0..255, CHW) → quantized model input through the exported lookup table. */
void es_quantize_input(const uint8_t *pixels, size_t n, const uint8_t lut[256], uint8_t *out);

/* One convolution (plain, grouped or depthwise) with bias and requantization; ReLU is the clamp at
 * the output zero point when that is 0. `acc` holds out_h * out_w int32 sums (one output plane). */
void es_conv2d(const es_layer_t *layer, const uint8_t *in, uint8_t *out, int32_t *acc);

/* Max pooling on uint8 (order-preserving, so no requantization); padding never wins. */
void es_maxpool2d(const es_layer_t *layer, const uint8_t *in, uint8_t *out);

/* ReLU on a quantized tensor: nothing below the zero point (kept for graphs with an explicit Relu). */
void es_relu(uint8_t *data, size_t n, uint8_t zero_point);

/* Run the layer list, ping-ponging between two arena buffers; the input is in buf_a, `acc` is the
 * largest output plane's int32 sums. Returns the buffer holding the last layer's output. */
uint8_t *es_run_layers(const es_layer_t *layers, int count, uint8_t *buf_a, uint8_t *buf_b, int32_t *acc);

#endif
