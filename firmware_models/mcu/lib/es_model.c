/* Binds the generated es_model_data.h (python -m firmware_models export-c) to the library. */
#include "es_model.h"

#include "es_model_data.h"
#include "es_nn.h"

static uint8_t g_arena_a[ES_ARENA_A_BYTES] __attribute__((aligned(8)));
static uint8_t g_arena_b[ES_ARENA_B_BYTES] __attribute__((aligned(8)));
static int32_t g_acc[ES_ACC_WORDS]; /* one output plane of int32 sums */

uint8_t *es_model_input(void) { return g_arena_a; }
size_t es_model_input_bytes(void) { return (size_t)ES_IN_C * ES_IN_H * ES_IN_W; }

const uint8_t *es_model_run(void) {
    es_quantize_input(g_arena_a, es_model_input_bytes(), es_input_lut, g_arena_a);
    return es_run_layers(es_layers, ES_N_LAYERS, g_arena_a, g_arena_b, g_acc);
}

size_t es_model_raw_bytes(void) { return (size_t)ES_RAW_C * ES_RAW_H * ES_RAW_W; }

int es_model_decode(const uint8_t *raw, es_detection_t *out, int max_out) {
    return es_fomo_decode(&es_head, raw, out, max_out);
}

const es_head_t *es_model_head(void) { return &es_head; }
const char *es_model_name(void) { return ES_MODEL_NAME "@" ES_MODEL_VERSION; }
const char *es_model_label(int c) { return (c >= 0 && c < ES_N_CLASSES) ? es_labels[c] : "?"; }
size_t es_model_arena_bytes(void) { return sizeof g_arena_a + sizeof g_arena_b + sizeof g_acc; }
