/* The exported model behind three calls: fill the input, run, decode. One static arena, no heap. */
#ifndef ES_MODEL_H
#define ES_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "es_fomo.h"

#define ES_MAX_DETECTIONS 32

/* Where the next frame goes: CHW pixels 0..255 in the model's colour order (arena buffer A). */
uint8_t *es_model_input(void);
size_t es_model_input_bytes(void);

/* Quantize the input in place and run every layer; returns the raw output tensor (also in the arena). */
const uint8_t *es_model_run(void);
size_t es_model_raw_bytes(void);

int es_model_decode(const uint8_t *raw, es_detection_t *out, int max_out);
const es_head_t *es_model_head(void);

const char *es_model_name(void);    /* "name@version" */
const char *es_model_label(int c);
size_t es_model_arena_bytes(void);

#endif
