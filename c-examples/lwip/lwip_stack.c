/*
 * lwip_stack.c: lwIP bring-up for the demo and tests on Linux (Debian's
 * liblwip-dev 2.1.3), from our lwIP probe's bring-up code.
 *
 * netif_add and the other raw-API calls run in the tcpip_init callback:
 * that runs in the tcpip thread with the core lock held, which this build
 * asserts (LWIP_ASSERT_CORE_LOCKED aborts on unlocked raw-API calls).
 *
 * Licensed MIT OR Apache-2.0, like the library.
 */
#include "lwip_stack.h"

#include "lwip/opt.h"
#include "lwip/init.h"
#include "lwip/tcpip.h"
#include "lwip/netif.h"
#include "lwip/ip_addr.h"
#include "lwip/pbuf.h"
#include "lwip/sys.h"
#include "netif/etharp.h"
#if LWIP_IPV6
#include "lwip/ethip6.h"
#endif

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <pthread.h>
#include <sys/ioctl.h>
#include <net/if.h>
#include <linux/if_tun.h>

static struct netif g_netif;
static volatile unsigned long g_frames_out;
static u16_t g_mtu = 1500;
static int g_started;

/* ---- dummy loopback netif: output counts and drops ---------------------- */

static err_t dummy_output4 (struct netif * n, struct pbuf * p, const ip4_addr_t * a)
{
	(void) n; (void) p; (void) a;
	g_frames_out++;
	return ERR_OK;
}

#if LWIP_IPV6
static err_t dummy_output6 (struct netif * n, struct pbuf * p, const ip6_addr_t * a)
{
	(void) n; (void) p; (void) a;
	g_frames_out++;
	return ERR_OK;
}
#endif

static err_t dummy_linkoutput (struct netif * n, struct pbuf * p)
{
	(void) n; (void) p;
	g_frames_out++;
	return ERR_OK;
}

static err_t dummy_netif_init (struct netif * n)
{
	n->name[0] = 'l';
	n->name[1] = 'o';
	n->mtu = g_mtu;
	n->output = dummy_output4;
#if LWIP_IPV6
	n->output_ip6 = dummy_output6;
#endif
	n->linkoutput = dummy_linkoutput;
	n->flags = 0;   /* no ARP, no broadcast, no IGMP/MLD */
	return ERR_OK;
}

unsigned long nopoll_lwip_stack_frames_out (void)
{
	return g_frames_out;
}

/* ---- our own tap netif: rx frames in PBUF_RAM pbufs ------------------- */

static int g_tapfd = -1;

#define TAP_FRAME_MAX 1600  /* MTU 1500 + Ethernet header, with room */

static err_t tap_linkoutput (struct netif * n, struct pbuf * p)
{
	char buf[TAP_FRAME_MAX];
	ssize_t w;
	(void) n;
	if (p->tot_len > sizeof (buf))
		return ERR_IF;
	pbuf_copy_partial (p, buf, p->tot_len, 0);
	w = write (g_tapfd, buf, p->tot_len);
	return w == (ssize_t) p->tot_len ? ERR_OK : ERR_IF;
}

static void * tap_reader (void * arg)
{
	struct netif * n = (struct netif *) arg;
	char buf[TAP_FRAME_MAX];
	for (;;) {
		ssize_t len = read (g_tapfd, buf, sizeof (buf));
		struct pbuf * p;
		if (len <= 0) {
			if (len < 0 && errno == EINTR)
				continue;
			perror ("lwip_stack: tap read");
			exit (1);
		}
		p = pbuf_alloc (PBUF_RAW, (u16_t) len, PBUF_RAM);
		if (p == NULL)
			continue;
		pbuf_take (p, buf, (u16_t) len);
		if (n->input (p, n) != ERR_OK)   /* tcpip_input: thread-safe */
			pbuf_free (p);
	}
	return NULL;
}

static err_t tap_netif_init (struct netif * n)
{
	static const u8_t mac[6] = { 0x02, 0x00, 0x00, 0x00, 0x4c, 0x57 };   /* locally administered */
	n->name[0] = 't';
	n->name[1] = 'p';
	n->hwaddr_len = 6;
	memcpy (n->hwaddr, mac, 6);
	n->mtu = g_mtu;
	n->flags = NETIF_FLAG_BROADCAST | NETIF_FLAG_ETHARP | NETIF_FLAG_ETHERNET;
	n->output = etharp_output;
#if LWIP_IPV6
	n->output_ip6 = ethip6_output;
#endif
	n->linkoutput = tap_linkoutput;
	return ERR_OK;
}

static int tap_open (const char * ifname)
{
	struct ifreq ifr;
	g_tapfd = open ("/dev/net/tun", O_RDWR | O_CLOEXEC);
	if (g_tapfd < 0) {
		perror ("lwip_stack: open /dev/net/tun");
		return -1;
	}
	memset (&ifr, 0, sizeof (ifr));
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
	strncpy (ifr.ifr_name, ifname, IFNAMSIZ - 1);
	if (ioctl (g_tapfd, TUNSETIFF, &ifr) < 0) {
		perror ("lwip_stack: TUNSETIFF");
		close (g_tapfd);
		g_tapfd = -1;
		return -1;
	}
	return 0;
}

/* ---- bring-up --------------------------------------------------------- */

struct init_ctx {
	sys_sem_t done;
	int tap;
	int ok;
	ip4_addr_t ip, mask, gw;
};

/* In the tcpip thread, core lock held. */
static void init_done (void * arg)
{
	struct init_ctx * c = (struct init_ctx *) arg;
	struct netif * r = netif_add (&g_netif, &c->ip, &c->mask, &c->gw, NULL,
				      c->tap ? tap_netif_init : dummy_netif_init, tcpip_input);
	if (r != NULL) {
#if LWIP_IPV6
		if (! c->tap) {
			/* ::1 as the netif's address: lwIP routes ::1 to the default
			 * netif (no loopif in this build) and then needs a valid
			 * IPv6 source address there. */
			ip6_addr_t lo6;
			ip6_addr_set_loopback (&lo6);
			netif_ip6_addr_set (&g_netif, 0, &lo6);
			netif_ip6_addr_set_state (&g_netif, 0, IP6_ADDR_VALID);
		}
#endif
		netif_set_default (&g_netif);
		netif_set_up (&g_netif);
		netif_set_link_up (&g_netif);
#if LWIP_IPV6 && LWIP_IPV6_SEND_ROUTER_SOLICIT
		/* no router solicitations: nothing is to leave the loopback */
		if (! c->tap)
			g_netif.rs_count = 0;
#endif
		c->ok = 1;
	}
	sys_sem_signal (&c->done);
}

static int start_stack (struct init_ctx * c)
{
	if (g_started) {
		fprintf (stderr, "lwip_stack: already started\n");
		return -1;
	}
	g_started = 1;
	if (sys_sem_new (&c->done, 0) != ERR_OK) {
		fprintf (stderr, "lwip_stack: sys_sem_new failed\n");
		return -1;
	}
	tcpip_init (init_done, c);
	sys_sem_wait (&c->done);
	sys_sem_free (&c->done);
	if (! c->ok) {
		fprintf (stderr, "lwip_stack: netif_add failed\n");
		return -1;
	}
	return 0;
}

int nopoll_lwip_stack_start_loopback (unsigned short mtu)
{
	static struct init_ctx c;
	g_mtu = mtu ? mtu : 1500;
	c.tap = 0;
	IP4_ADDR (&c.ip, 127, 0, 0, 1);
	IP4_ADDR (&c.mask, 255, 0, 0, 0);
	IP4_ADDR (&c.gw, 0, 0, 0, 0);
	return start_stack (&c);
}

int nopoll_lwip_stack_start_tap (const char * tap_name, const char * ip, const char * mask, const char * gw, unsigned short mtu)
{
	static struct init_ctx c;
	pthread_t t;
	g_mtu = mtu ? mtu : 1500;
	if (g_mtu > TAP_FRAME_MAX - 18) {
		fprintf (stderr, "lwip_stack: mtu %u too large for the tap netif\n", g_mtu);
		return -1;
	}
	c.tap = 1;
	if (! ip4addr_aton (ip, &c.ip) || ! ip4addr_aton (mask, &c.mask) || ! ip4addr_aton (gw, &c.gw)) {
		fprintf (stderr, "lwip_stack: bad address %s/%s gw %s\n", ip, mask, gw);
		return -1;
	}
	if (tap_open (tap_name) != 0)
		return -1;
	if (start_stack (&c) != 0)
		return -1;
	if (pthread_create (&t, NULL, tap_reader, &g_netif) != 0) {
		fprintf (stderr, "lwip_stack: cannot start the tap reader\n");
		return -1;
	}
	pthread_detach (t);
	return 0;
}
