/* mps2-an500 support: vector table, reset, FPU on, UART0 (polled), SysTick, semihosting. */
#include "board.h"

#include <string.h>

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _sstack, _estack;
int main(void);

#define REG(addr) (*(volatile uint32_t *)(addr))
#define UART0 0x40004000u
#define UART_DATA REG(UART0 + 0x00)
#define UART_STATE REG(UART0 + 0x04)
#define UART_CTRL REG(UART0 + 0x08)
#define UART_BAUDDIV REG(UART0 + 0x10)
#define SYST_CSR REG(0xE000E010u)
#define SYST_RVR REG(0xE000E014u)
#define SYST_CVR REG(0xE000E018u)
#define CPACR REG(0xE000ED88u)
#define STACK_PAINT 0xC0FFEE11u
#define SYSTICK_RELOAD 0x00FFFFFFu

static volatile uint32_t g_systick_wraps;

void Reset_Handler(void);
static void default_handler(void) { board_exit(3); }
void SysTick_Handler(void) { g_systick_wraps++; }

__attribute__((section(".vectors"), used)) static void (*const g_vectors[16])(void) = {
    (void (*)(void))(&_estack), Reset_Handler, default_handler, default_handler, default_handler,
    default_handler, default_handler, 0, 0, 0, 0, default_handler, default_handler, 0, default_handler,
    SysTick_Handler,
};

void Reset_Handler(void) {
    uint32_t *src = &_sidata, *dst = &_sdata;
    while (dst < &_edata) *dst++ = *src++;
    for (dst = &_sbss; dst < &_ebss; dst++) *dst = 0;
    /* Paint the stack below the current frame so the high-water mark can be read later. */
    uint32_t sp;
    __asm volatile("mov %0, sp" : "=r"(sp));
    for (uint32_t *p = &_sstack; (uint32_t)p < sp - 256u; p++) *p = STACK_PAINT;
    CPACR |= 0xFu << 20; /* CP10, CP11: the FPU */
    __asm volatile("dsb\n isb");
    board_exit(main());
}

void board_init(void) {
    UART_BAUDDIV = 16;
    UART_CTRL = 0x3; /* TX and RX enabled, polled */
    SYST_RVR = SYSTICK_RELOAD;
    SYST_CVR = 0;
    SYST_CSR = 0x7; /* processor clock, interrupt on wrap, enabled */
}

void uart_write(const void *data, size_t n) {
    const uint8_t *p = data;
    for (size_t i = 0; i < n; i++) {
        while (UART_STATE & 0x1u) {
        }
        UART_DATA = p[i];
    }
}

void uart_read(void *data, size_t n) {
    uint8_t *p = data;
    for (size_t i = 0; i < n; i++) {
        while (!(UART_STATE & 0x2u)) {
        }
        p[i] = (uint8_t)UART_DATA;
    }
}

uint64_t board_ticks(void) {
    uint32_t wraps, cvr;
    do {
        wraps = g_systick_wraps;
        cvr = SYST_CVR;
    } while (wraps != g_systick_wraps);
    return (uint64_t)wraps * (SYSTICK_RELOAD + 1u) + (SYSTICK_RELOAD - cvr);
}

static int semihost(int op, const void *arg) {
    register int r0 __asm("r0") = op;
    register const void *r1 __asm("r1") = arg;
    __asm volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

void board_log(const char *text) { semihost(0x04, text); /* SYS_WRITE0 */ }

void board_exit(int code) {
    const uint32_t block[2] = {0x20026u, (uint32_t)code}; /* ADP_Stopped_ApplicationExit, status */
    semihost(0x20, block);                               /* SYS_EXIT_EXTENDED */
    semihost(0x18, (const void *)0x20026u);              /* SYS_EXIT, if the extended call is missing */
    for (;;) {
    }
}

size_t board_stack_high_water(void) {
    const uint32_t *p = &_sstack;
    while (p < &_estack && *p == STACK_PAINT) p++;
    return (size_t)((const uint8_t *)&_estack - (const uint8_t *)p);
}

size_t board_stack_size(void) { return (size_t)((uint8_t *)&_estack - (uint8_t *)&_sstack); }
size_t board_static_ram(void) { return (size_t)((uint8_t *)&_ebss - (uint8_t *)&_sdata); }

uint32_t board_calibrate(uint32_t iterations) {
    uint64_t t0 = board_ticks();
    __asm volatile(
        "1: subs %0, %0, #1\n"
        "   bne 1b\n"
        : "+r"(iterations)
        :
        : "cc");
    return (uint32_t)(board_ticks() - t0);
}
