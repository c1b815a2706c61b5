/*
 * nopoll_private.h: kept for source compatibility with upstream nopoll, where
 * the API is split into one header per module. Everything is declared in
 * nopoll.h (generated), which this header includes.
 *
 * Upstream's nopoll_private.h exposes the struct layouts. nopoll-rs keeps
 * them private (direct struct field access is a documented deviation):
 * this header only exists so that an #include of it still compiles.
 */
#ifndef __NOPOLL_PRIVATE_H__
#define __NOPOLL_PRIVATE_H__

#include "nopoll.h"

#endif /* __NOPOLL_PRIVATE_H__ */
