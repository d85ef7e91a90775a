/* Wire-contract events from detections, held in a bounded ring until the broker acknowledged them.
 *
 * A microcontroller has no tracker: it reports a class's detections (kind "detection") on the frames
 * where that class's count changes, the same JSON schema the cameras send (schema, event_id,
 * device_id, seq, ts, ...). The ring holds ES_RING_SLOTS events; when full, the oldest unsent event
 * gives way and is counted as dropped. */
#ifndef ES_EVENTS_H
#define ES_EVENTS_H

#include <stddef.h>
#include <stdint.h>

#include "es_fomo.h"

#define ES_RING_SLOTS 16
#define ES_EVENT_BYTES 448
#define ES_INFLIGHT_MAX 4

typedef struct {
    char device[65];
    char camera[33];
    uint32_t boot;      /* a per-boot id from the host (a real part keeps a boot counter in flash) */
    uint32_t seq;       /* next event sequence number */
} es_identity_t;

typedef struct {
    uint8_t state;      /* 0 free, 1 queued, 2 sent (waiting for PUBACK) */
    uint16_t packet_id;
    uint32_t seq;
    uint16_t len;
    char json[ES_EVENT_BYTES];
} es_slot_t;

typedef struct {
    es_slot_t slots[ES_RING_SLOTS];
    uint32_t made, acked, dropped;
    uint8_t last_count[ES_FOMO_MAX_CLASSES];
} es_ring_t;

/* Events for one frame's detections; returns how many were queued. */
int es_events_from_frame(es_ring_t *ring, es_identity_t *id, const char *model, const char *const *labels,
                         int n_classes, const es_detection_t *det, int n, uint32_t frame, uint64_t ts_ms);
int es_ring_pending(const es_ring_t *ring);            /* queued + sent */
es_slot_t *es_ring_next_to_send(es_ring_t *ring);      /* oldest queued, if the in-flight window allows */
void es_ring_acked(es_ring_t *ring, uint16_t packet_id);
void es_ring_requeue(es_ring_t *ring);                 /* after a reconnect: sent → queued */

/* JSON helpers shared with the status message. */
size_t es_fmt_fixed(char *out, double v, int decimals);
size_t es_fmt_ts(char *out, uint64_t ts_ms);

#endif
