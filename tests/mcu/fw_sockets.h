/* A stand-in for a firmware's socket header (lwip/sockets.h), for the
 * NOPOLL_SOCKET_HEADER check of run.sh: its own socklen_t and nfds_t,
 * declared the way lwIP declares them. */
#ifndef FW_SOCKETS_H
#define FW_SOCKETS_H
#include <stdint.h>
typedef uint32_t socklen_t;
typedef unsigned int nfds_t;
struct sockaddr { uint8_t sa_len; uint8_t sa_family; char sa_data[14]; };
struct pollfd { int fd; short events; short revents; };
#endif
