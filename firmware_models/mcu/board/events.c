#include "events.h"

#include <string.h>

typedef struct {
    char *buf;
    size_t cap, len;
} sb_t;

static void sb_raw(sb_t *s, const char *text, size_t n) {
    if (s->len + n >= s->cap) n = s->cap - 1 - s->len;
    memcpy(s->buf + s->len, text, n);
    s->len += n;
    s->buf[s->len] = 0;
}
static void sb_str(sb_t *s, const char *text) { sb_raw(s, text, strlen(text)); }
static void sb_quoted(sb_t *s, const char *text) { /* ids and labels are [A-Za-z0-9_.-] by contract */
    sb_str(s, "\"");
    sb_str(s, text);
    sb_str(s, "\"");
}
static size_t fmt_u64(char *out, uint64_t v) {
    char tmp[24];
    size_t n = 0, i = 0;
    do tmp[n++] = (char)('0' + v % 10);
    while ((v /= 10));
    while (n) out[i++] = tmp[--n];
    out[i] = 0;
    return i;
}
static void sb_u64(sb_t *s, uint64_t v) {
    char t[24];
    sb_raw(s, t, fmt_u64(t, v));
}
static void sb_fixed(sb_t *s, double v, int decimals) {
    char t[40];
    sb_raw(s, t, es_fmt_fixed(t, v, decimals));
}

size_t es_fmt_fixed(char *out, double v, int decimals) {
    size_t i = 0;
    uint64_t scale = 1;
    for (int d = 0; d < decimals; d++) scale *= 10;
    if (v < 0) {
        out[i++] = '-';
        v = -v;
    }
    uint64_t q = (uint64_t)(v * (double)scale + 0.5);
    i += fmt_u64(out + i, q / scale);
    if (decimals) {
        out[i++] = '.';
        uint64_t frac = q % scale;
        for (uint64_t d = scale / 10; d; d /= 10) out[i++] = (char)('0' + (frac / d) % 10);
    }
    out[i] = 0;
    return i;
}

size_t es_fmt_ts(char *out, uint64_t ts_ms) {
    size_t i = fmt_u64(out, ts_ms / 1000);
    out[i++] = '.';
    uint32_t ms = (uint32_t)(ts_ms % 1000);
    out[i++] = (char)('0' + ms / 100);
    out[i++] = (char)('0' + ms / 10 % 10);
    out[i++] = (char)('0' + ms % 10);
    out[i] = 0;
    return i;
}

static es_slot_t *claim(es_ring_t *r) {
    es_slot_t *oldest = 0;
    for (int i = 0; i < ES_RING_SLOTS; i++) {
        if (r->slots[i].state == 0) return &r->slots[i];
        if (r->slots[i].state == 1 && (!oldest || r->slots[i].seq < oldest->seq)) oldest = &r->slots[i];
    }
    if (oldest) r->dropped++; /* full: the oldest unsent event gives way */
    return oldest;
}

int es_events_from_frame(es_ring_t *r, es_identity_t *id, const char *model, const char *const *labels,
                         int n_classes, const es_detection_t *det, int n, uint32_t frame, uint64_t ts_ms) {
    int queued = 0;
    uint8_t count[ES_FOMO_MAX_CLASSES] = {0};
    for (int i = 0; i < n; i++) count[det[i].label]++;
    for (int c = 0; c < n_classes; c++) {
        if (count[c] == r->last_count[c]) continue;
        for (int i = 0; i < n; i++) {
            if (det[i].label != c) continue;
            es_slot_t *slot = claim(r);
            if (!slot) {
                r->dropped++;
                continue;
            }
            char ts[32];
            es_fmt_ts(ts, ts_ms);
            sb_t s = {slot->json, sizeof slot->json, 0};
            char eid[40] = "b";
            static const char hex[] = "0123456789abcdef";
            for (int k = 0; k < 8; k++) eid[1 + k] = hex[(id->boot >> (28 - 4 * k)) & 0xF];
            eid[9] = '-';
            fmt_u64(eid + 10, id->seq);
            sb_str(&s, "{\"schema\":1,\"event_id\":");
            sb_quoted(&s, eid);
            sb_str(&s, ",\"device_id\":");
            sb_quoted(&s, id->device);
            sb_str(&s, ",\"seq\":");
            sb_u64(&s, id->seq);
            sb_str(&s, ",\"ts\":");
            sb_str(&s, ts);
            sb_str(&s, ",\"camera\":");
            sb_quoted(&s, id->camera);
            sb_str(&s, ",\"kind\":\"detection\",\"phase\":\"instant\",\"label\":");
            sb_quoted(&s, labels[c]);
            sb_str(&s, ",\"score\":");
            sb_fixed(&s, det[i].score, 6);
            sb_str(&s, ",\"bbox\":[");
            sb_fixed(&s, det[i].x1, 6);
            sb_str(&s, ",");
            sb_fixed(&s, det[i].y1, 6);
            sb_str(&s, ",");
            sb_fixed(&s, det[i].x2, 6);
            sb_str(&s, ",");
            sb_fixed(&s, det[i].y2, 6);
            sb_str(&s, "],\"count\":");
            sb_u64(&s, count[c]);
            sb_str(&s, ",\"model\":");
            sb_quoted(&s, model);
            sb_str(&s, ",\"attributes\":{\"cx\":");
            sb_fixed(&s, det[i].cx, 6);
            sb_str(&s, ",\"cy\":");
            sb_fixed(&s, det[i].cy, 6);
            sb_str(&s, ",\"frame\":");
            sb_u64(&s, frame);
            sb_str(&s, ",\"board\":\"mps2-an500\"}}");
            slot->state = 1;
            slot->seq = id->seq++;
            slot->len = (uint16_t)s.len;
            slot->packet_id = 0;
            r->made++;
            queued++;
        }
        r->last_count[c] = count[c];
    }
    return queued;
}

int es_ring_pending(const es_ring_t *r) {
    int n = 0;
    for (int i = 0; i < ES_RING_SLOTS; i++) n += r->slots[i].state != 0;
    return n;
}

es_slot_t *es_ring_next_to_send(es_ring_t *r) {
    es_slot_t *oldest = 0;
    int inflight = 0;
    for (int i = 0; i < ES_RING_SLOTS; i++) {
        inflight += r->slots[i].state == 2;
        if (r->slots[i].state == 1 && (!oldest || r->slots[i].seq < oldest->seq)) oldest = &r->slots[i];
    }
    return inflight < ES_INFLIGHT_MAX ? oldest : 0;
}

void es_ring_acked(es_ring_t *r, uint16_t packet_id) {
    for (int i = 0; i < ES_RING_SLOTS; i++)
        if (r->slots[i].state == 2 && r->slots[i].packet_id == packet_id) {
            r->slots[i].state = 0;
            r->acked++;
        }
}

void es_ring_requeue(es_ring_t *r) {
    for (int i = 0; i < ES_RING_SLOTS; i++)
        if (r->slots[i].state == 2) r->slots[i].state = 1;
}
