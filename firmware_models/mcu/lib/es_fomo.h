/* FOMO head on the microcontroller: the model's last quantized tensor → labelled centroids.
 *
 * Same conventions as the toolchain's reference decoder (firmware_models/decoders.py, manifest
 * ``decoder`` block): depth-to-space, dequantize, softmax over classes per grid cell; a cell belongs to
 * class c when c is its arg-max (first on ties), not background, and its probability >= threshold;
 * a class's mask is first closed by its merge gap (cv2 MORPH_CLOSE semantics), then cells joined 4- or
 * 8-connected are one detection at their probability-weighted centre.
 */
#ifndef ES_FOMO_H
#define ES_FOMO_H

#include <stdint.h>

#define ES_FOMO_MAX_CLASSES 8
#define ES_FOMO_MAX_CELLS 1024

typedef struct {
    float out_scale;     /* dequantization of the raw tensor */
    uint8_t out_zp;
    uint8_t block;       /* DepthToSpace block size, 1 = none */
    uint8_t crd;         /* 1: CRD mode, 0: DCR */
    uint8_t n_classes;
    uint16_t grid_h, grid_w;
    uint8_t background;
    float threshold;
    uint8_t connectivity[ES_FOMO_MAX_CLASSES]; /* 4 or 8 */
    uint8_t gap_x[ES_FOMO_MAX_CLASSES];        /* merge gap radius in columns, 0 = none */
    uint8_t gap_y[ES_FOMO_MAX_CLASSES];
} es_head_t;

typedef struct {
    uint8_t label;
    float score;          /* the largest cell probability of the blob */
    float cx, cy;         /* normalised centroid */
    float x1, y1, x2, y2; /* normalised bounding box of the blob's cells */
} es_detection_t;

/* Class probabilities of one grid cell (softmax of the dequantized raw values). */
void es_fomo_cell_probs(const es_head_t *head, const uint8_t *raw, int y, int x, float *probs);

/* Decode; returns the number of detections written (at most max_out), class by class, each class's
 * blobs in the raster order of their first cell. */
int es_fomo_decode(const es_head_t *head, const uint8_t *raw, es_detection_t *out, int max_out);

#endif
