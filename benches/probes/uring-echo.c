/* uring-echo: the raw TCP echo of servers/raw-echo.c on io_uring instead
 * of epoll, to tell whether another kernel interface lowers the ceiling.
 *
 *   uring-echo PORT          (listens on 127.0.0.1)
 *
 * One thread, one ring (single issuer, deferred task work when the kernel
 * has it), one receive in flight per socket: what it brings is sent back
 * from the same buffer, and the socket is received from again once all of
 * it went out. One io_uring_enter per loop pass submits every send and
 * receive of the pass. A probe, not part of the suite: ceiling.sh runs it
 * against raw-echo. Needs liburing (Debian liburing-dev). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF (64 * 1024)
#define MAXFD 4096

enum { ACCEPT = 1, RECV = 2, SEND = 3 };

struct conn { char *buf; size_t len, pos; };

static struct conn conns[MAXFD];
static struct io_uring ring;
static volatile sig_atomic_t stop;

static void on_signal (int s) { (void) s; stop = 1; }

static struct io_uring_sqe *next_sqe (void)
{
	struct io_uring_sqe *s = io_uring_get_sqe (&ring);
	if (s == NULL) {
		io_uring_submit (&ring);
		s = io_uring_get_sqe (&ring);
	}
	return s;
}

static void submit (int kind, int fd)
{
	struct io_uring_sqe *s = next_sqe ();
	struct conn *c = &conns[fd];
	if (s == NULL) {
		fprintf (stderr, "uring-echo: submission queue full\n");
		exit (1);
	}
	if (kind == ACCEPT)
		io_uring_prep_accept (s, fd, NULL, NULL, 0);
	else if (kind == RECV)
		io_uring_prep_recv (s, fd, c->buf, BUF, 0);
	else
		io_uring_prep_send (s, fd, c->buf + c->pos, c->len - c->pos, MSG_NOSIGNAL);
	io_uring_sqe_set_data64 (s, ((unsigned long long) kind << 32) | (unsigned) fd);
}

static void drop (int fd)
{
	free (conns[fd].buf);
	memset (&conns[fd], 0, sizeof conns[fd]);
	close (fd);
}

int main (int argc, char **argv)
{
	struct io_uring_params p;
	struct sockaddr_in a;
	int one = 1, lfd;

	if (argc < 2)
		return 2;
	lfd = socket (AF_INET, SOCK_STREAM, 0);
	setsockopt (lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	memset (&a, 0, sizeof a);
	a.sin_family = AF_INET;
	a.sin_port = htons (atoi (argv[1]));
	a.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
	if (lfd < 0 || bind (lfd, (void *) &a, sizeof a) || listen (lfd, 1024)) {
		perror ("uring-echo: listen");
		return 1;
	}
	memset (&p, 0, sizeof p);
	p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
	if (io_uring_queue_init_params (4096, &ring, &p) < 0) {
		memset (&p, 0, sizeof p);
		if (io_uring_queue_init_params (4096, &ring, &p) < 0) {
			perror ("uring-echo: io_uring");
			return 1;
		}
	}
	signal (SIGINT, on_signal);
	signal (SIGTERM, on_signal);
	printf ("uring-echo: ready on 127.0.0.1:%s\n", argv[1]);
	fflush (stdout);
	submit (ACCEPT, lfd);
	while (!stop) {
		struct io_uring_cqe *cqe;
		unsigned head, seen = 0;
		if (io_uring_submit_and_wait (&ring, 1) < 0)
			continue;
		io_uring_for_each_cqe (&ring, head, cqe) {
			unsigned long long d = io_uring_cqe_get_data64 (cqe);
			int kind = (int) (d >> 32), fd = (int) (d & 0xffffffffu), res = cqe->res;
			seen++;
			if (kind == ACCEPT) {
				if (res >= MAXFD || (res >= 0 && (conns[res].buf = malloc (BUF)) == NULL)) {
					close (res);
				} else if (res >= 0) {
					setsockopt (res, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
					submit (RECV, res);
				}
				submit (ACCEPT, lfd);
			} else if (kind == RECV) {
				if (res <= 0) {
					drop (fd);
					continue;
				}
				conns[fd].len = (size_t) res;
				conns[fd].pos = 0;
				submit (SEND, fd);
			} else {
				if (res < 0) {
					drop (fd);
					continue;
				}
				conns[fd].pos += (size_t) res;
				submit (conns[fd].pos < conns[fd].len ? SEND : RECV, fd);
			}
		}
		io_uring_cq_advance (&ring, seen);
	}
	io_uring_queue_exit (&ring);
	return 0;
}
