/* nopoll_mbedtls: noPollTlsOps over mbedTLS 2.28 (see nopoll_mbedtls.h).
 *
 * - Ciphertext goes through the bio callbacks nopoll gives each session
 *   (nopoll's socket table), never through a socket of mbedTLS's own.
 * - Clients verify the server when asked: the CA file given, else the
 *   system bundle (/etc/ssl/certs/ca-certificates.crt), and the host name
 *   (or the IP literal: mbedTLS checks it against the certificate's names
 *   as text); servers require a client certificate signed by their CA
 *   when asked.
 * - TLS 1.2 minimum unless NOPOLL_METHOD_TLSV1_1 / TLSV1 ask for older.
 * - One random generator per session (small and simple; firmware would
 *   share one).
 * C99 (mbedTLS's headers are not C89). */
#include "nopoll_mbedtls.h"

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/pk.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SYSTEM_BUNDLE "/etc/ssl/certs/ca-certificates.crt"

typedef struct {
	mbedtls_ssl_context      ssl;
	mbedtls_ssl_config       conf;
	mbedtls_x509_crt         ca;
	mbedtls_x509_crt         own;
	mbedtls_pk_context       key;
	mbedtls_entropy_context  entropy;
	mbedtls_ctr_drbg_context drbg;
	void                   * bio;
	noPollTlsBioRecv         recv;
	noPollTlsBioSend         send;
} Session;

static int bio_send (void * ctx, const unsigned char * buf, size_t len)
{
	Session * s = (Session *) ctx;
	int r = s->send (s->bio, buf, len);
	if (r == NOPOLL_TLS_WANT_WRITE)
		return MBEDTLS_ERR_SSL_WANT_WRITE;
	return r < 0 ? MBEDTLS_ERR_NET_SEND_FAILED : r;
}

static int bio_recv (void * ctx, unsigned char * buf, size_t len)
{
	Session * s = (Session *) ctx;
	int r = s->recv (s->bio, buf, len);
	if (r == NOPOLL_TLS_WANT_READ)
		return MBEDTLS_ERR_SSL_WANT_READ;
	return r < 0 ? MBEDTLS_ERR_NET_RECV_FAILED : r;
}

static int result (int r)
{
	if (r >= 0)
		return r;
	if (r == MBEDTLS_ERR_SSL_WANT_READ)
		return NOPOLL_TLS_WANT_READ;
	if (r == MBEDTLS_ERR_SSL_WANT_WRITE)
		return NOPOLL_TLS_WANT_WRITE;
	return -1;
}

static void session_free (void * p)
{
	Session * s = (Session *) p;
	if (s == NULL)
		return;
	mbedtls_ssl_free (&s->ssl);
	mbedtls_ssl_config_free (&s->conf);
	mbedtls_x509_crt_free (&s->ca);
	mbedtls_x509_crt_free (&s->own);
	mbedtls_pk_free (&s->key);
	mbedtls_ctr_drbg_free (&s->drbg);
	mbedtls_entropy_free (&s->entropy);
	free (s);
}

static void *fail (Session * s, char * err, int err_size, const char * what, int code)
{
	char why[128];
	mbedtls_strerror (code, why, sizeof (why));
	if (err != NULL && err_size > 0) {
		strncpy (err, what, (size_t) err_size - 1);
		err[err_size - 1] = 0;
		if ((int) strlen (err) + 3 < err_size) {
			strcat (err, ": ");
			strncat (err, why, (size_t) err_size - strlen (err) - 1);
		}
	}
	session_free (s);
	return NULL;
}

static void *session_new (const noPollTlsParams * p, void * bio, noPollTlsBioRecv recv,
			  noPollTlsBioSend send, char * err, int err_size)
{
	Session * s = (Session *) calloc (1, sizeof (Session));
	int r, minor = MBEDTLS_SSL_MINOR_VERSION_3;
	const char * name;
	if (s == NULL)
		return NULL;
	s->bio = bio;
	s->recv = recv;
	s->send = send;
	mbedtls_ssl_init (&s->ssl);
	mbedtls_ssl_config_init (&s->conf);
	mbedtls_x509_crt_init (&s->ca);
	mbedtls_x509_crt_init (&s->own);
	mbedtls_pk_init (&s->key);
	mbedtls_entropy_init (&s->entropy);
	mbedtls_ctr_drbg_init (&s->drbg);
	r = mbedtls_ctr_drbg_seed (&s->drbg, mbedtls_entropy_func, &s->entropy,
				   (const unsigned char *) "nopoll", 6);
	if (r != 0)
		return fail (s, err, err_size, "random generator", r);
	r = mbedtls_ssl_config_defaults (&s->conf, p->is_server ? MBEDTLS_SSL_IS_SERVER : MBEDTLS_SSL_IS_CLIENT,
					 MBEDTLS_SSL_TRANSPORT_STREAM, MBEDTLS_SSL_PRESET_DEFAULT);
	if (r != 0)
		return fail (s, err, err_size, "configuration", r);
	mbedtls_ssl_conf_rng (&s->conf, mbedtls_ctr_drbg_random, &s->drbg);
	/* noPollSslProtocol: 4 TLSV1, 5 TLSV1_1; anything else TLS 1.2 */
	if (p->min_version == 4)
		minor = MBEDTLS_SSL_MINOR_VERSION_1;
	else if (p->min_version == 5)
		minor = MBEDTLS_SSL_MINOR_VERSION_2;
	mbedtls_ssl_conf_min_version (&s->conf, MBEDTLS_SSL_MAJOR_VERSION_3, minor);
	if (p->ca_certificate != NULL) {
		r = mbedtls_x509_crt_parse_file (&s->ca, p->ca_certificate);
		if (r < 0)
			return fail (s, err, err_size, "CA file", r);
	} else if (! p->is_server && p->verify) {
		/* the system bundle (parse errors of single entries are skipped) */
		if (mbedtls_x509_crt_parse_file (&s->ca, SYSTEM_BUNDLE) < 0)
			return fail (s, err, err_size, "no CA: " SYSTEM_BUNDLE, 0);
	}
	mbedtls_ssl_conf_ca_chain (&s->conf, &s->ca, NULL);
	mbedtls_ssl_conf_authmode (&s->conf, p->verify ? MBEDTLS_SSL_VERIFY_REQUIRED : MBEDTLS_SSL_VERIFY_NONE);
	if (p->certificate != NULL) {
		r = mbedtls_x509_crt_parse_file (&s->own, p->certificate);
		if (r == 0 && p->chain_certificate != NULL)
			r = mbedtls_x509_crt_parse_file (&s->own, p->chain_certificate);
		if (r != 0)
			return fail (s, err, err_size, "certificate", r);
		r = mbedtls_pk_parse_keyfile (&s->key, p->private_key ? p->private_key : p->certificate, NULL);
		if (r != 0)
			return fail (s, err, err_size, "private key", r);
		r = mbedtls_ssl_conf_own_cert (&s->conf, &s->own, &s->key);
		if (r != 0)
			return fail (s, err, err_size, "certificate and key", r);
	} else if (p->is_server)
		return fail (s, err, err_size, "a server needs a certificate", 0);
	r = mbedtls_ssl_setup (&s->ssl, &s->conf);
	if (r != 0)
		return fail (s, err, err_size, "session", r);
	/* the name to verify (an IP literal is compared as text), and SNI */
	name = p->host_name != NULL ? p->host_name : p->verify_ip;
	if (! p->is_server && name != NULL) {
		r = mbedtls_ssl_set_hostname (&s->ssl, name);
		if (r != 0)
			return fail (s, err, err_size, "host name", r);
	}
	mbedtls_ssl_set_bio (&s->ssl, s, bio_send, bio_recv, NULL);
	return s;
}

static int handshake (void * p)
{
	return result (mbedtls_ssl_handshake (&((Session *) p)->ssl));
}

static int tls_read (void * p, unsigned char * buf, int len)
{
	int r = mbedtls_ssl_read (&((Session *) p)->ssl, buf, (size_t) len);
	if (r == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY)
		return 0;
	return result (r);
}

static int tls_write (void * p, const unsigned char * buf, int len)
{
	return result (mbedtls_ssl_write (&((Session *) p)->ssl, buf, (size_t) len));
}

static int pending (void * p)
{
	return (int) mbedtls_ssl_get_bytes_avail (&((Session *) p)->ssl);
}

static void close_notify (void * p)
{
	mbedtls_ssl_close_notify (&((Session *) p)->ssl);
}

static long verify_result (void * p)
{
	uint32_t flags = mbedtls_ssl_get_verify_result (&((Session *) p)->ssl);
	/* (uint32_t) -1: no verification ran (off, or no certificate yet) */
	return flags == (uint32_t) -1 ? 0 : (long) flags;
}

static void *native (void * p)
{
	return &((Session *) p)->ssl;
}

static const noPollTlsOps ops = {
	NOPOLL_TLS_OPS_VERSION,
	session_new,
	handshake,
	tls_read,
	tls_write,
	pending,
	close_notify,
	session_free,
	verify_result,
	native
};

const noPollTlsOps * nopoll_mbedtls_ops (void)
{
	return &ops;
}
