/* nopoll_mbedtls: a complete noPollTlsOps table over mbedTLS 2.28 (Debian
 * libmbedtls-dev). Install it before the first TLS connection:
 *
 *     nopoll_install_tls_ops (nopoll_mbedtls_ops ());
 *
 * Link with -lmbedtls -lmbedx509 -lmbedcrypto. */
#ifndef NOPOLL_MBEDTLS_H
#define NOPOLL_MBEDTLS_H
#include <nopoll.h>

const noPollTlsOps * nopoll_mbedtls_ops (void);

#endif
