/* The UART link to the host bridge: framed packets, because one byte stream carries the camera's
 * frames, the MQTT session and test results. Packet: 0xE5, type, u32 little-endian length, payload. */
#ifndef ES_LINK_H
#define ES_LINK_H

#include <stddef.h>
#include <stdint.h>

#define LINK_MAGIC 0xE5
/* host → board */
#define LINK_CONFIG 'C' /* "key=value\n" lines: device, username, password, boot, keepalive, results */
#define LINK_FRAME 'F'  /* u32 index, u64 ts_ms, CHW pixels */
#define LINK_MQTT_IN 'M'
#define LINK_QUIT 'Q'   /* deliver what is queued, say offline, disconnect, report, exit */
/* board → host */
#define LINK_MQTT_OUT 'M'
#define LINK_RESULT 'R' /* u32 index, u32 ticks, raw head tensor, u16 n, n x (u8 label, 7 x f32) */
#define LINK_READY 'A'  /* ready for the next frame */
#define LINK_STATS 'S'  /* JSON */
#define LINK_LOG 'L'

void link_send(uint8_t type, const void *payload, uint32_t len);
void link_send2(uint8_t type, const void *a, uint32_t alen, const void *b, uint32_t blen);
/* Reads a packet header; returns its type and sets *len. Resyncs on a bad magic byte. */
uint8_t link_recv_header(uint32_t *len);

#endif
