/*
 * nopoll_lwip.h: a noPollSocketOps table over lwIP's BSD socket API
 * (lwip_socket, lwip_recv, lwip_poll, ...), for firmware and for testing
 * the library on real lwIP (Debian's liblwip-dev 2.1.3 on Linux).
 *
 * Use, before any other nopoll call (the no_std build has no default
 * table at all):
 *
 *     tcpip_init (...);                              (the stack: your job)
 *     if (! nopoll_install_socket_ops (nopoll_lwip_socket_ops ()))
 *             abort ();
 *     nopoll_lwip_install_mutexes ();
 *     nopoll_lwip_install_clock ();
 *     nopoll_install_random (your_rng);              (no_std: else rand ())
 *     ctx = nopoll_ctx_new ();  ...
 *
 * This header does not include any lwIP header, so a program using it can
 * be built with -ansi against nopoll.h alone; only nopoll_lwip.c needs the
 * lwIP include path.
 *
 * Licensed MIT OR Apache-2.0, like the library.
 */
#ifndef NOPOLL_LWIP_H
#define NOPOLL_LWIP_H

#include <nopoll.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The table: every entry an lwip_* wrapper (kernel_fds = 0). Static
 * storage, never NULL; nopoll_install_socket_ops copies it. */
const noPollSocketOps * nopoll_lwip_socket_ops (void);

/* Platform hooks from lwIP's sys layer. Call them after the stack is up
 * and before creating a context.
 * - mutexes: nopoll_thread_handlers with sys_mutex_* (the no_std library
 *   makes its own locks with them; without them it spins);
 * - clock: nopoll_install_clock with sys_now (milliseconds; the no_std
 *   default is gettimeofday, which a firmware may not have).
 * Randomness (masking keys, handshake nonces) is not here: install your
 * hardware RNG with nopoll_install_random (the no_std default is rand ()). */
void nopoll_lwip_install_mutexes (void);
void nopoll_lwip_install_clock (void);

/* How often the library locked a mutex and read the clock through these
 * hooks (approximate counts, for tests: 0 means the hook is not used). */
long nopoll_lwip_mutex_locks (void);
long nopoll_lwip_clock_reads (void);

/* Socket budget, to behave like firmware whose lwIP has 4 to 16 sockets
 * (NUM_SOCKETS = MEMP_NUM_NETCONN). With a cap of N > 0, a socket () or
 * accept () that would make more than N sockets of this table open at once
 * fails with ENFILE, as lwIP's alloc_socket does (an accepted connection
 * over the budget is closed, as lwIP does). 0 (the default): no cap.
 * May be changed at any time; sockets already open stay open. */
void nopoll_lwip_set_socket_cap (int cap);

/* Sockets opened through the table and not yet closed, and the most that
 * were ever open at once. */
int nopoll_lwip_open_sockets (void);
int nopoll_lwip_peak_sockets (void);

/* Calls refused by the cap so far. */
long nopoll_lwip_refused_by_cap (void);

#ifdef __cplusplus
}
#endif

#endif /* NOPOLL_LWIP_H */
