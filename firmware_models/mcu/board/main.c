/* edgesight on a Cortex-M7: frames in over the UART, the int8 FOMO model, detections → wire-contract
 * events, MQTT 3.1.1 out over the same UART (the host bridge carries the bytes to the broker). */
#include <string.h>

#include "board.h"
#include "es_model.h"
#include "events.h"
#include "link.h"
#include "mqtt.h"

#define TOPIC_PREFIX "edgesight/v1/devices/"
#define AGENT_VERSION "edgesight-mcu/0.1"

static mqtt_t g_mqtt;
static es_ring_t g_ring;
static es_identity_t g_id;
static char g_username[65], g_password[129];
static char g_topic_events[128], g_topic_status[128];
static uint16_t g_keepalive = 60;
static int g_results; /* send every frame's raw tensor and detections back (tests) */
static uint64_t g_last_sent_ms, g_now_ms;
static uint32_t g_frames, g_status_id;
static uint64_t g_ticks_total, g_ticks_max;
static uint8_t g_buf[1024];
static const char *g_labels[ES_FOMO_MAX_CLASSES];

static void on_puback(uint16_t id) {
    if (id == g_status_id) g_status_id = 0;
    else es_ring_acked(&g_ring, id);
}

static void copy_value(char *dst, size_t cap, const char *src, size_t n) {
    if (n >= cap) n = cap - 1;
    memcpy(dst, src, n);
    dst[n] = 0;
}

static uint32_t parse_u32(const char *s, size_t n) {
    uint32_t v = 0;
    for (size_t i = 0; i < n && s[i] >= '0' && s[i] <= '9'; i++) v = v * 10 + (uint32_t)(s[i] - '0');
    return v;
}

static void parse_config(const char *text, size_t len) {
    size_t i = 0;
    while (i < len) {
        size_t end = i, eq = 0;
        while (end < len && text[end] != '\n') {
            if (text[end] == '=' && !eq) eq = end;
            end++;
        }
        if (eq) {
            const char *k = text + i, *v = text + eq + 1;
            size_t kn = eq - i, vn = end - eq - 1;
            if (kn == 6 && !memcmp(k, "device", 6)) copy_value(g_id.device, sizeof g_id.device, v, vn);
            if (kn == 6 && !memcmp(k, "camera", 6)) copy_value(g_id.camera, sizeof g_id.camera, v, vn);
            if (kn == 8 && !memcmp(k, "username", 8)) copy_value(g_username, sizeof g_username, v, vn);
            if (kn == 8 && !memcmp(k, "password", 8)) copy_value(g_password, sizeof g_password, v, vn);
            if (kn == 4 && !memcmp(k, "boot", 4)) g_id.boot = parse_u32(v, vn);
            if (kn == 3 && !memcmp(k, "seq", 3)) g_id.seq = parse_u32(v, vn);
            if (kn == 9 && !memcmp(k, "keepalive", 9)) g_keepalive = (uint16_t)parse_u32(v, vn);
            if (kn == 7 && !memcmp(k, "results", 7)) g_results = parse_u32(v, vn) != 0;
            if (kn == 3 && !memcmp(k, "now", 3)) g_now_ms = (uint64_t)parse_u32(v, vn) * 1000u;
        }
        i = end + 1;
    }
}

static size_t status_json(char *out, size_t cap, const char *state) {
    char ts[32];
    es_fmt_ts(ts, g_now_ms);
    size_t n = 0;
    const char *parts[] = {"{\"schema\":1,\"device_id\":\"", g_id.device, "\",\"state\":\"", state, "\",\"ts\":", ts,
                           ",\"agent_version\":\"" AGENT_VERSION "\",\"model\":\"", es_model_name(),
                           "\",\"cameras\":[\"", g_id.camera, "\"]}"};
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
        size_t k = strlen(parts[i]);
        if (n + k >= cap) break;
        memcpy(out + n, parts[i], k);
        n += k;
    }
    out[n] = 0;
    return n;
}

static void topic(char *out, const char *kind) {
    strcpy(out, TOPIC_PREFIX);
    strcat(out, g_id.device);
    strcat(out, "/");
    strcat(out, kind);
}

static void connect(void) {
    char will[256];
    topic(g_topic_events, "events");
    topic(g_topic_status, "status");
    status_json(will, sizeof will, "offline");
    mqtt_connect(&g_mqtt, g_id.device, g_username, g_password, g_keepalive, g_topic_status, will);
    g_last_sent_ms = g_now_ms;
}

/* Read one packet from the host and act on it; returns its type. */
static uint8_t service_one(void) {
    uint32_t len;
    uint8_t type = link_recv_header(&len);
    if (type == LINK_FRAME) {
        uint8_t head[12];
        uart_read(head, sizeof head);
        uint32_t index;
        memcpy(&index, head, 4);
        memcpy(&g_now_ms, head + 4, 8);
        size_t want = es_model_input_bytes();
        if (len - 12 != want) board_exit(4);
        uart_read(es_model_input(), want);
        uint64_t t0 = board_ticks();
        const uint8_t *raw = es_model_run();
        static es_detection_t det[ES_MAX_DETECTIONS];
        int n = es_model_decode(raw, det, ES_MAX_DETECTIONS);
        uint64_t ticks = board_ticks() - t0;
        g_ticks_total += ticks;
        if (ticks > g_ticks_max) g_ticks_max = ticks;
        g_frames++;
        es_events_from_frame(&g_ring, &g_id, es_model_name(), g_labels, es_model_head()->n_classes, det, n, index,
                             g_now_ms);
        if (g_results) {
            uint8_t meta[10];
            uint32_t t32 = (uint32_t)ticks;
            memcpy(meta, &index, 4);
            memcpy(meta + 4, &t32, 4);
            uint16_t n16 = (uint16_t)n;
            memcpy(meta + 8, &n16, 2);
            uint8_t dets[ES_MAX_DETECTIONS * 29];
            for (int i = 0; i < n; i++) {
                dets[i * 29] = det[i].label;
                float f[7] = {det[i].score, det[i].cx, det[i].cy, det[i].x1, det[i].y1, det[i].x2, det[i].y2};
                memcpy(dets + i * 29 + 1, f, sizeof f);
            }
            /* R: u32 index, u32 ticks, u16 n, raw tensor, n x (u8 label, 7 x f32) */
            uint32_t rb = (uint32_t)es_model_raw_bytes();
            uint8_t h[6] = {LINK_MAGIC, LINK_RESULT};
            uint32_t total = 10 + rb + (uint32_t)n * 29;
            memcpy(h + 2, &total, 4);
            uart_write(h, 6);
            uart_write(meta, 10);
            uart_write(raw, rb);
            uart_write(dets, (uint32_t)n * 29);
        }
    } else if (type == LINK_MQTT_IN) {
        while (len) {
            uint32_t k = len < sizeof g_buf ? len : sizeof g_buf;
            uart_read(g_buf, k);
            mqtt_feed(&g_mqtt, g_buf, k, on_puback);
            len -= k;
        }
    } else if (type == LINK_CONFIG) {
        static char cfg[512];
        uint32_t k = len < sizeof cfg ? len : sizeof cfg;
        uart_read(cfg, k);
        for (uint32_t rest = len - k; rest; rest--) uart_read(g_buf, 1);
        parse_config(cfg, k);
        if (g_id.device[0]) connect();
    } else {
        for (uint32_t rest = len; rest; rest--) uart_read(g_buf, 1);
    }
    return type;
}

/* Publish what the window allows (events wait for CONNACK); ping when the link was quiet. */
static void pump(void) {
    if (!g_mqtt.connected) return;
    es_slot_t *slot;
    while ((slot = es_ring_next_to_send(&g_ring))) {
        slot->packet_id = mqtt_new_id(&g_mqtt);
        mqtt_publish(&g_mqtt, g_topic_events, slot->json, slot->len, 1, 0, 0, slot->packet_id);
        slot->state = 2;
        g_last_sent_ms = g_now_ms;
    }
    if (g_keepalive && g_now_ms - g_last_sent_ms > (uint64_t)g_keepalive * 500u) {
        mqtt_ping();
        g_last_sent_ms = g_now_ms;
    }
}

static void publish_status(const char *state) {
    char json[256];
    size_t n = status_json(json, sizeof json, state);
    g_status_id = mqtt_new_id(&g_mqtt);
    mqtt_publish(&g_mqtt, g_topic_status, json, n, 1, 1, 0, g_status_id);
}

static void send_stats(void) {
    char json[512], num[32];
    size_t n = 0;
    const char *keys[] = {"frames", "events_made", "events_acked", "events_dropped", "ticks_total", "ticks_max",
                          "calib_ticks_2M", "stack_high_water", "stack_size", "static_ram", "arena_bytes",
                          "connack"};
    uint64_t vals[] = {g_frames, g_ring.made, g_ring.acked, g_ring.dropped, g_ticks_total, g_ticks_max,
                       board_calibrate(1000000u), board_stack_high_water(), board_stack_size(),
                       board_static_ram(), es_model_arena_bytes(), (uint64_t)(g_mqtt.connack_code + 1)};
    json[n++] = '{';
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        if (i) json[n++] = ',';
        json[n++] = '"';
        strcpy(json + n, keys[i]);
        n += strlen(keys[i]);
        json[n++] = '"';
        json[n++] = ':';
        size_t k = es_fmt_fixed(num, (double)vals[i], 0);
        memcpy(json + n, num, k);
        n += k;
    }
    json[n++] = '}';
    link_send(LINK_STATS, json, (uint32_t)n);
}

int main(void) {
    board_init();
    mqtt_init(&g_mqtt);
    strcpy(g_id.camera, "default");
    for (int c = 0; c < es_model_head()->n_classes; c++) g_labels[c] = es_model_label(c);
    board_log("edgesight mcu: ready\n");
    int online = 0;
    link_send(LINK_READY, 0, 0);
    for (;;) {
        uint8_t type = service_one();
        if (g_mqtt.connected && !online) {
            publish_status("online");
            online = 1;
        }
        pump();
        if (type == LINK_FRAME) link_send(LINK_READY, 0, 0);
        if (type == LINK_QUIT) break;
    }
    /* Deliver what is queued (the host keeps the broker's replies coming), then say offline. */
    while (g_mqtt.connected && (es_ring_pending(&g_ring) || g_status_id)) {
        service_one();
        pump();
    }
    if (g_mqtt.connected) {
        publish_status("offline");
        while (g_status_id) service_one();
        mqtt_disconnect();
    }
    send_stats();
    board_log("edgesight mcu: done\n");
    return g_mqtt.connack_code > 0 ? 5 : 0;
}
