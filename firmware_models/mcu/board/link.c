#include "link.h"

#include "board.h"

static void header(uint8_t type, uint32_t len) {
    uint8_t h[6] = {LINK_MAGIC, type, (uint8_t)len, (uint8_t)(len >> 8), (uint8_t)(len >> 16), (uint8_t)(len >> 24)};
    uart_write(h, sizeof h);
}

void link_send(uint8_t type, const void *payload, uint32_t len) {
    header(type, len);
    uart_write(payload, len);
}

void link_send2(uint8_t type, const void *a, uint32_t alen, const void *b, uint32_t blen) {
    header(type, alen + blen);
    uart_write(a, alen);
    uart_write(b, blen);
}

uint8_t link_recv_header(uint32_t *len) {
    uint8_t b = 0;
    do uart_read(&b, 1);
    while (b != LINK_MAGIC);
    uint8_t h[5];
    uart_read(h, sizeof h);
    *len = (uint32_t)h[1] | (uint32_t)h[2] << 8 | (uint32_t)h[3] << 16 | (uint32_t)h[4] << 24;
    return h[0];
}
