/* FOMO decoding; see es_fomo.h. Static work buffers: one grid at a time, no heap. */
#include "es_fomo.h"

#include <math.h>
#include <string.h>

static uint8_t g_best[ES_FOMO_MAX_CELLS];  /* arg-max class per cell */
static uint8_t g_mask[ES_FOMO_MAX_CELLS];
static uint8_t g_tmp[ES_FOMO_MAX_CELLS];
static int16_t g_queue[ES_FOMO_MAX_CELLS];

static uint8_t raw_at(const es_head_t *h, const uint8_t *raw, int c, int y, int x) {
    const int b = h->block, rw = h->grid_w / b, rh = h->grid_h / b;
    const int sub = (y % b) * b + (x % b);
    const int ch = h->crd ? c * b * b + sub : sub * h->n_classes + c;
    return raw[((size_t)ch * rh + y / b) * rw + x / b];
}

void es_fomo_cell_probs(const es_head_t *h, const uint8_t *raw, int y, int x, float *probs) {
    float v[ES_FOMO_MAX_CLASSES], top = -INFINITY, sum = 0.0f;
    for (int c = 0; c < h->n_classes; c++) {
        v[c] = (float)((int)raw_at(h, raw, c, y, x) - (int)h->out_zp) * h->out_scale;
        if (v[c] > top) top = v[c];
    }
    for (int c = 0; c < h->n_classes; c++) {
        probs[c] = expf(v[c] - top);
        sum += probs[c];
    }
    const float inv = 1.0f / sum;
    for (int c = 0; c < h->n_classes; c++) probs[c] *= inv;
}

static float cell_prob(const es_head_t *h, const uint8_t *raw, int cell, int c) {
    float p[ES_FOMO_MAX_CLASSES];
    es_fomo_cell_probs(h, raw, cell / h->grid_w, cell % h->grid_w, p);
    return p[c];
}

/* Morphological closing with a (2gy+1) x (2gx+1) box: dilate (outside counts as empty), then erode
 * (outside counts as full), as OpenCV's default border does. */
static void close_gaps(uint8_t *mask, int gh, int gw, int gx, int gy) {
    for (int y = 0; y < gh; y++)
        for (int x = 0; x < gw; x++) {
            uint8_t v = 0;
            for (int yy = y - gy; yy <= y + gy && !v; yy++)
                for (int xx = x - gx; xx <= x + gx; xx++)
                    if (yy >= 0 && yy < gh && xx >= 0 && xx < gw && mask[yy * gw + xx]) {
                        v = 1;
                        break;
                    }
            g_tmp[y * gw + x] = v;
        }
    for (int y = 0; y < gh; y++)
        for (int x = 0; x < gw; x++) {
            uint8_t v = 1;
            for (int yy = y - gy; yy <= y + gy && v; yy++)
                for (int xx = x - gx; xx <= x + gx; xx++)
                    if (yy >= 0 && yy < gh && xx >= 0 && xx < gw && !g_tmp[yy * gw + xx]) {
                        v = 0;
                        break;
                    }
            mask[y * gw + x] = v;
        }
}

int es_fomo_decode(const es_head_t *h, const uint8_t *raw, es_detection_t *out, int max_out) {
    const int gh = h->grid_h, gw = h->grid_w, cells = gh * gw;
    float probs[ES_FOMO_MAX_CLASSES];
    int n = 0;
    if (cells > ES_FOMO_MAX_CELLS || h->n_classes > ES_FOMO_MAX_CLASSES) return -1;
    for (int i = 0; i < cells; i++) {
        es_fomo_cell_probs(h, raw, i / gw, i % gw, probs);
        int best = 0;
        for (int c = 1; c < h->n_classes; c++)
            if (probs[c] > probs[best]) best = c;
        g_best[i] = (best != h->background && probs[best] >= h->threshold) ? (uint8_t)best : 0xFF;
    }
    for (int c = 0; c < h->n_classes; c++) {
        if (c == h->background) continue;
        int any = 0;
        for (int i = 0; i < cells; i++) any |= (g_mask[i] = (g_best[i] == c));
        if (!any) continue;
        if (h->gap_x[c] || h->gap_y[c]) close_gaps(g_mask, gh, gw, h->gap_x[c], h->gap_y[c]);
        const int eight = h->connectivity[c] != 4;
        for (int start = 0; start < cells; start++) {
            if (g_mask[start] != 1) continue;
            /* Flood fill one blob; visited cells are marked 2. */
            int head = 0, tail = 0, x0 = gw, y0 = gh, x1 = -1, y1 = -1;
            double sw = 0.0, sx = 0.0, sy = 0.0;
            float top = 0.0f;
            g_queue[tail++] = (int16_t)start;
            g_mask[start] = 2;
            while (head < tail) {
                const int cell = g_queue[head++], y = cell / gw, x = cell % gw;
                const float p = cell_prob(h, raw, cell, c);
                sw += p;
                sx += (double)x * p;
                sy += (double)y * p;
                if (p > top) top = p;
                if (x < x0) x0 = x;
                if (x > x1) x1 = x;
                if (y < y0) y0 = y;
                if (y > y1) y1 = y;
                for (int dy = -1; dy <= 1; dy++)
                    for (int dx = -1; dx <= 1; dx++) {
                        if ((!dx && !dy) || (!eight && dx && dy)) continue;
                        const int yy = y + dy, xx = x + dx;
                        if (yy < 0 || yy >= gh || xx < 0 || xx >= gw || g_mask[yy * gw + xx] != 1) continue;
                        g_mask[yy * gw + xx] = 2;
                        g_queue[tail++] = (int16_t)(yy * gw + xx);
                    }
            }
            if (n >= max_out) continue;
            es_detection_t *d = &out[n++];
            d->label = (uint8_t)c;
            d->score = top;
            d->cx = (float)((sx / sw + 0.5) / gw);
            d->cy = (float)((sy / sw + 0.5) / gh);
            d->x1 = (float)x0 / gw;
            d->y1 = (float)y0 / gh;
            d->x2 = (float)(x1 + 1) / gw;
            d->y2 = (float)(y1 + 1) / gh;
        }
    }
    return n;
}
