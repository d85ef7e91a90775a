#include "mqtt.h"

#include <string.h>

#include "link.h"

static uint8_t g_tx[1024];

static size_t put_u16(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
    return 2;
}

static size_t put_str(uint8_t *p, const char *s) {
    size_t n = strlen(s);
    put_u16(p, (uint16_t)n);
    memcpy(p + 2, s, n);
    return n + 2;
}

static size_t put_varint(uint8_t *p, size_t v) {
    size_t i = 0;
    do {
        uint8_t b = v % 128;
        v /= 128;
        p[i++] = v ? (uint8_t)(b | 0x80) : b;
    } while (v);
    return i;
}

/* Fixed header + body (already in g_tx + 5) out through the link as one MQTT_OUT packet. */
static void send_packet(uint8_t type_flags, size_t body_len) {
    uint8_t head[5];
    size_t h = 0;
    head[h++] = type_flags;
    h += put_varint(head + h, body_len);
    link_send2(LINK_MQTT_OUT, head, (uint32_t)h, g_tx + 5, (uint32_t)body_len);
}

void mqtt_init(mqtt_t *m) {
    memset(m, 0, sizeof *m);
    m->connack_code = -1;
    m->next_id = 1;
}

uint16_t mqtt_new_id(mqtt_t *m) {
    uint16_t id = m->next_id++;
    if (m->next_id == 0) m->next_id = 1;
    return id;
}

void mqtt_connect(mqtt_t *m, const char *client_id, const char *username, const char *password,
                  uint16_t keepalive_s, const char *will_topic, const char *will_payload) {
    uint8_t *p = g_tx + 5;
    size_t n = put_str(p, "MQTT");
    p[n++] = 4;                            /* protocol level: 3.1.1 */
    p[n++] = 0x80 | 0x40 | 0x20 | 0x08 | 0x04 | 0x02; /* user, password, will retain, will QoS 1, will, clean */
    n += put_u16(p + n, keepalive_s);
    n += put_str(p + n, client_id);
    n += put_str(p + n, will_topic);
    n += put_str(p + n, will_payload);
    n += put_str(p + n, username);
    n += put_str(p + n, password);
    m->connected = 0;
    m->connack_code = -1;
    send_packet(0x10, n);
}

uint16_t mqtt_publish(mqtt_t *m, const char *topic, const char *payload, size_t len, int qos, int retain,
                      int dup, uint16_t packet_id) {
    (void)m;
    uint8_t *p = g_tx + 5;
    size_t n = put_str(p, topic);
    if (qos) n += put_u16(p + n, packet_id);
    if (n + len > sizeof g_tx - 5) return 0;
    memcpy(p + n, payload, len);
    n += len;
    send_packet((uint8_t)(0x30 | (dup ? 0x08 : 0) | (qos << 1) | (retain ? 1 : 0)), n);
    return packet_id;
}

void mqtt_ping(void) {
    uint8_t p[2] = {0xC0, 0x00};
    link_send(LINK_MQTT_OUT, p, 2);
}

void mqtt_disconnect(void) {
    uint8_t p[2] = {0xE0, 0x00};
    link_send(LINK_MQTT_OUT, p, 2);
}

static void handle(mqtt_t *m, const uint8_t *pkt, size_t body_off, size_t body_len, mqtt_puback_fn on_puback) {
    const uint8_t type = pkt[0] >> 4;
    const uint8_t *b = pkt + body_off;
    if (type == 2 && body_len >= 2) { /* CONNACK */
        m->connack_code = b[1];
        m->connected = b[1] == 0;
    } else if (type == 4 && body_len >= 2) { /* PUBACK */
        on_puback((uint16_t)(b[0] << 8 | b[1]));
    }
    /* PINGRESP (13) needs nothing; nothing is subscribed, so no PUBLISH arrives. */
}

void mqtt_feed(mqtt_t *m, const uint8_t *data, size_t n, mqtt_puback_fn on_puback) {
    for (size_t i = 0; i < n; i++) {
        if (m->rx_len < sizeof m->rx) m->rx[m->rx_len++] = data[i];
        else m->rx_dropped++;
        /* Is a whole packet in? fixed header, varint remaining length, body. */
        while (m->rx_len >= 2) {
            size_t len = 0, mult = 1, k = 1;
            int complete_len = 0;
            while (k < m->rx_len && k <= 4) {
                len += (m->rx[k] & 0x7F) * mult;
                mult *= 128;
                if (!(m->rx[k++] & 0x80)) {
                    complete_len = 1;
                    break;
                }
            }
            if (!complete_len || m->rx_len < k + len) break;
            handle(m, m->rx, k, len, on_puback);
            memmove(m->rx, m->rx + k + len, m->rx_len - k - len);
            m->rx_len -= k + len;
        }
    }
}
