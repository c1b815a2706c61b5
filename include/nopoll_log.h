/*
 * nopoll_log.h: kept for source compatibility with upstream nopoll, where
 * the API is split into one header per module. Everything is declared in
 * nopoll.h (generated), which this header includes.
 */
#ifndef __NOPOLL_LOG_H__
#define __NOPOLL_LOG_H__

#include "nopoll.h"

#endif /* __NOPOLL_LOG_H__ */
