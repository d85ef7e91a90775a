/* Host build of the library for tests: records on stdin, text on stdout.
 *   'F' + input bytes (CHW pixels) → "Q <raw tensor hex>", then the detections
 *   'R' + raw tensor bytes          → the detections only (decoder checks on any tensor)
 * Detections: "D <n>" then n lines "label score cx cy x1 y1 x2 y2" (%.9g). */
#include <stdio.h>
#include <stdlib.h>

#include "es_model.h"

static int read_exact(uint8_t *buf, size_t n) { return fread(buf, 1, n, stdin) == n; }

static void print_detections(const uint8_t *raw) {
    static es_detection_t det[ES_FOMO_MAX_CELLS]; /* no cap on the host: every blob, for the checks */
    int n = es_model_decode(raw, det, ES_FOMO_MAX_CELLS);
    printf("D %d\n", n);
    for (int i = 0; i < n; i++)
        printf("%d %.9g %.9g %.9g %.9g %.9g %.9g %.9g\n", det[i].label, det[i].score, det[i].cx, det[i].cy,
               det[i].x1, det[i].y1, det[i].x2, det[i].y2);
}

int main(void) {
    static uint8_t raw_in[1 << 16];
    int cmd;
    if (es_model_raw_bytes() > sizeof raw_in) return 3;
    while ((cmd = getchar()) != EOF) {
        if (cmd == 'F') {
            if (!read_exact(es_model_input(), es_model_input_bytes())) return 2;
            const uint8_t *raw = es_model_run();
            printf("Q ");
            for (size_t i = 0; i < es_model_raw_bytes(); i++) printf("%02x", raw[i]);
            printf("\n");
            print_detections(raw);
        } else if (cmd == 'R') {
            if (!read_exact(raw_in, es_model_raw_bytes())) return 2;
            print_detections(raw_in);
        } else {
            fprintf(stderr, "unknown record %d\n", cmd);
            return 1;
        }
        fflush(stdout);
    }
    return 0;
}
