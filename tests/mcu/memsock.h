/* memsock: an in-memory socket table (noPollSocketOps) for the MCU test
 * firmware: TCP-like streams between two ends inside one program, and
 * UDP-like sockets connected to themselves (the library's waker).
 *
 * Every number it receives or returns is the library's (the Linux ABI of
 * src/sys.rs), named MS_* below: this file plays the role a firmware's
 * lwIP port plays (c-examples/lwip/nopoll_lwip.c), with no translation to
 * do because it is its own stack.
 *
 * Single-threaded and deterministic: each stream end has a receive buffer
 * of MS_BUF bytes (small on purpose, so a 40 KiB message takes many
 * partial sends), and poll() with nothing ready advances the virtual clock
 * (memsock_now_ms, the library's clock hook) by its timeout instead of
 * waiting. */
#ifndef MEMSOCK_H
#define MEMSOCK_H

#include "nopoll.h"

#define MS_BUF 1024

extern const noPollSocketOps memsock_ops;

/* The clock hook (nopoll_install_clock): virtual milliseconds. */
unsigned long memsock_now_ms (void);
/* Moves the virtual clock forward. */
void memsock_advance_ms (unsigned long ms);
/* Sockets open now (the waker and listeners included). */
int memsock_open_count (void);
/* poll() calls that found nothing ready (each advanced the clock). */
unsigned long memsock_idle_polls (void);

/* Linux numbers (src/sys.rs). */
#define MS_AF_INET      2
#define MS_SOCK_STREAM  1
#define MS_SOCK_DGRAM   2
#define MS_SOCK_FLAGS   (0x800 | 0x80000)
#define MS_SOL_SOCKET   1
#define MS_SO_TYPE      3
#define MS_SO_ERROR     4
#define MS_SO_ACCEPTCONN 30
#define MS_MSG_PEEK     0x2
#define MS_POLLIN       0x1
#define MS_POLLOUT      0x4
#define MS_POLLERR      0x8
#define MS_POLLHUP      0x10
#define MS_POLLNVAL     0x20
#define MS_SHUT_RD      0
#define MS_SHUT_WR      1
#define MS_SHUT_RDWR    2
#define MS_EAI_NONAME   (-2)
#define MS_EAI_MEMORY   (-10)
#define MS_EBADF        9
#define MS_EAGAIN       11
#define MS_EINVAL       22
#define MS_EPIPE        32
#define MS_ENOSYS       38
#define MS_EMFILE       24
#define MS_EADDRINUSE   98
#define MS_ENOTCONN     107
#define MS_ECONNREFUSED 111

#endif
