/* A minimal MQTT 3.1.1 client over the UART link: CONNECT (credentials, last will), PUBLISH QoS 0/1,
 * PUBACK/CONNACK/PINGRESP parsing, PINGREQ, DISCONNECT. No TCP/IP: the host bridge carries the bytes. */
#ifndef ES_MQTT_H
#define ES_MQTT_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    int connected;       /* CONNACK with return code 0 seen */
    int connack_code;    /* -1 until a CONNACK arrives */
    uint16_t next_id;
    uint8_t rx[512];
    size_t rx_len;
    uint32_t rx_dropped; /* bytes of packets too large to hold (none are expected) */
} mqtt_t;

/* Callback for a PUBACK of packet id. */
typedef void (*mqtt_puback_fn)(uint16_t packet_id);

void mqtt_init(mqtt_t *m);
void mqtt_connect(mqtt_t *m, const char *client_id, const char *username, const char *password,
                  uint16_t keepalive_s, const char *will_topic, const char *will_payload);
uint16_t mqtt_publish(mqtt_t *m, const char *topic, const char *payload, size_t len, int qos, int retain,
                      int dup, uint16_t packet_id);
uint16_t mqtt_new_id(mqtt_t *m);
void mqtt_ping(void);
void mqtt_disconnect(void);
/* Bytes from the broker: completes packets and reports PUBACKs. */
void mqtt_feed(mqtt_t *m, const uint8_t *data, size_t n, mqtt_puback_fn on_puback);

#endif
