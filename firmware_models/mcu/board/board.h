/* The emulated board: CMSDK UART0, SysTick, semihosting exit/log, stack painting. */
#ifndef ES_BOARD_H
#define ES_BOARD_H

#include <stddef.h>
#include <stdint.h>

void board_init(void);
void uart_write(const void *data, size_t n);
void uart_read(void *data, size_t n);                /* blocks until n bytes arrived */
uint64_t board_ticks(void);                          /* SysTick ticks since boot (wraps counted) */
void board_log(const char *text);                    /* semihosting console */
void board_exit(int code) __attribute__((noreturn)); /* semihosting: QEMU exits with code */
size_t board_stack_high_water(void);                 /* bytes of stack ever used */
size_t board_stack_size(void);
size_t board_static_ram(void);                       /* .data + .bss */
/* SysTick ticks for a loop of known instruction count: turns ticks into instructions under -icount. */
uint32_t board_calibrate(uint32_t iterations);

#endif
