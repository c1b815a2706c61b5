/* Startup of the MCU test firmware: vector table, reset (data, bss, stack
 * painting, newlib's semihosting), fault handlers that report and stop
 * QEMU with a failure status, and the semihosting exit. */
#include <stdint.h>
#include <string.h>

extern uint32_t __data_load, __data_start, __data_end, __bss_start__, __bss_end__;
extern uint32_t __StackTop, __StackLimit;
extern void initialise_monitor_handles (void);
extern int main (void);

#define STACK_PAINT 0xC0FFEE11u

static void sh_call (int op, const void * arg)
{
	register int r0 __asm__ ("r0") = op;
	register const void * r1 __asm__ ("r1") = arg;
	__asm__ volatile ("bkpt 0xab" : "+r" (r0) : "r" (r1) : "memory");
}

/* Stops QEMU: exit status 0 when ok, 1 otherwise (ADP_Stopped_*). */
void mcu_exit (int ok)
{
	sh_call (0x18, (const void *) (ok ? 0x20026 : 0x20023));
	for (;;)
		;
}

static void sh_puts (const char * s)
{
	sh_call (0x04, s);    /* SYS_WRITE0 */
}

/* Bytes of the stack ever used (the painted words overwritten). */
unsigned long mcu_stack_high_water (void)
{
	const uint32_t * p = &__StackLimit;
	while (p < &__StackTop && *p == STACK_PAINT)
		p++;
	return (unsigned long) ((const char *) &__StackTop - (const char *) p);
}

unsigned long mcu_stack_size (void)
{
	return (unsigned long) ((const char *) &__StackTop - (const char *) &__StackLimit);
}

void Reset_Handler (void)
{
	uint32_t * p;
	uintptr_t top = (uintptr_t) __builtin_frame_address (0) - 64;
	memcpy (&__data_start, &__data_load, (size_t) ((char *) &__data_end - (char *) &__data_start));
	memset (&__bss_start__, 0, (size_t) ((char *) &__bss_end__ - (char *) &__bss_start__));
	/* Paint the stack below this frame (with a margin). */
	for (p = &__StackLimit; (uintptr_t) p < top; p++)
		*p = STACK_PAINT;
#if defined(__ARM_FP)
	/* Cortex-M4F: enable the FPU (CP10, CP11) before any float code. */
	*(volatile uint32_t *) 0xE000ED88 |= 0xFu << 20;
	__asm__ volatile ("dsb\n\tisb");
#endif
#ifndef MCU_NOSYS
	initialise_monitor_handles ();
#endif
	mcu_exit (main () == 0);
}

static void fault (const char * what)
{
	sh_puts ("MCU FAULT: ");
	sh_puts (what);
	sh_puts ("\n");
	mcu_exit (0);
}

void NMI_Handler (void) { fault ("NMI"); }
void HardFault_Handler (void) { fault ("HardFault"); }
void MemManage_Handler (void) { fault ("MemManage"); }
void BusFault_Handler (void) { fault ("BusFault"); }
void UsageFault_Handler (void) { fault ("UsageFault"); }
void Default_Handler (void) { fault ("unexpected interrupt"); }

__attribute__ ((section (".vectors"), used))
static void (* const vectors[16 + 32]) (void) = {
	(void (*) (void)) &__StackTop,
	Reset_Handler,
	NMI_Handler,
	HardFault_Handler,
	MemManage_Handler,
	BusFault_Handler,
	UsageFault_Handler,
	0, 0, 0, 0,
	Default_Handler,  /* SVC */
	Default_Handler,  /* DebugMon */
	0,
	Default_Handler,  /* PendSV */
	Default_Handler,  /* SysTick */
	Default_Handler, Default_Handler, Default_Handler, Default_Handler,
	Default_Handler, Default_Handler, Default_Handler, Default_Handler,
	Default_Handler, Default_Handler, Default_Handler, Default_Handler,
	Default_Handler, Default_Handler, Default_Handler, Default_Handler,
	Default_Handler, Default_Handler, Default_Handler, Default_Handler,
	Default_Handler, Default_Handler, Default_Handler, Default_Handler,
	Default_Handler, Default_Handler, Default_Handler, Default_Handler,
	Default_Handler, Default_Handler, Default_Handler, Default_Handler
};
