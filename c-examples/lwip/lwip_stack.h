/*
 * lwip_stack.h: brings Debian's lwIP 2.1.3 up inside a Linux process, for
 * the demo and the tests (on firmware this is the board support code's
 * job). No lwIP header here: programs that include this one can be built
 * with -ansi.
 *
 * Rules (found probing Debian's lwIP): start the stack once, before any
 * lwip_* call (calls before tcpip_init crash); lwIP has no shutdown, end
 * the process with exit/_exit.
 */
#ifndef NOPOLL_LWIP_STACK_H
#define NOPOLL_LWIP_STACK_H

#ifdef __cplusplus
extern "C" {
#endif

/* In-process loopback: tcpip_init plus one dummy netif 127.0.0.1/8 whose
 * output only counts and drops frames. This lwIP build
 * (LWIP_NETIF_LOOPBACK=1, LWIP_HAVE_LOOPIF=0) loops every packet to 127.x
 * back inside the stack, so traffic between lwIP sockets on 127.0.0.1
 * never leaves lwIP. `mtu` 0 means 1500. Returns 0, or -1 (message on
 * stderr). */
int nopoll_lwip_stack_start_loopback (unsigned short mtu);

/* A tap device: tcpip_init plus our own Ethernet netif on the already
 * created tap `tap_name` (address `ip`, `mask`, gateway `gw`, dotted
 * quads) with a reader thread. Received frames go into PBUF_RAM pbufs:
 * Debian's tapif uses PBUF_POOL, whose elements are too small in
 * 2.1.3+dfsg1-2 (heap overflow on frames over 592 bytes). 127/8 cannot be
 * used on a tap (lwIP loops it back internally). Returns 0 or -1. */
int nopoll_lwip_stack_start_tap (const char * tap_name, const char * ip, const char * mask, const char * gw, unsigned short mtu);

/* Frames that reached the loopback dummy netif's output, i.e. would have
 * left lwIP: stays 0 for loopback traffic. */
unsigned long nopoll_lwip_stack_frames_out (void);

#ifdef __cplusplus
}
#endif

#endif /* NOPOLL_LWIP_STACK_H */
