/*
 * The three nopoll functions stable Rust cannot define, because they are
 * variadic or take a va_list:
 *
 *   char * nopoll_strdup_printf  (const char * chunk, ...);
 *   char * nopoll_strdup_printfv (const char * chunk, va_list args);
 *   void   __nopoll_log (noPollCtx * ctx, const char * function_name,
 *                        const char * file, int line,
 *                        noPollDebugLevel level, const char * message, ...);
 *
 * Compiled by build.rs (cc crate) as C89 and bundled into the staticlib and
 * the cdylib. Self-contained on purpose (only <stdarg.h>, <stdio.h>,
 * <stdlib.h>, <string.h>): it must also build for firmware targets where
 * nopoll.h's socket headers do not exist.
 *
 * When build.rs defines NOPOLL_SHIM_TRAMPOLINES, the functions get internal
 * hidden names (nopoll_shim_*) and src/ffi/shim_bridge.rs exports the
 * public names from Rust as tail-jump trampolines. A cdylib only exports
 * symbols defined in Rust, so this is what makes them visible in
 * libnopoll.so. Otherwise they are defined here under their public names.
 *
 * Everything crossing the boundary uses libc malloc/free (contract rule 6):
 * strings returned here are released with nopoll_free.
 */

/* vsnprintf is C99 (and POSIX); ask for it while compiling as C89. */
#ifndef _ISOC99_SOURCE
#define _ISOC99_SOURCE 1
#endif
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200112L
#endif

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Same type definitions as nopoll.h, so the definitions below have exactly
 * the types of the header's prototypes. */
typedef struct _noPollCtx noPollCtx;
typedef enum {
	NOPOLL_LEVEL_DEBUG    = 0,
	NOPOLL_LEVEL_WARNING  = 1,
	NOPOLL_LEVEL_CRITICAL = 2
} noPollDebugLevel;

#if defined(NOPOLL_SHIM_TRAMPOLINES)
#  if defined(__GNUC__)
#    define NOPOLL_SHIM_EXPORT __attribute__((visibility("hidden")))
#  else
#    define NOPOLL_SHIM_EXPORT
#  endif
#  define NOPOLL_SHIM_STRDUP_PRINTF  nopoll_shim_strdup_printf
#  define NOPOLL_SHIM_STRDUP_PRINTFV nopoll_shim_strdup_printfv
#  define NOPOLL_SHIM_LOG            nopoll_shim_log
#else
#  define NOPOLL_SHIM_EXPORT
#  define NOPOLL_SHIM_STRDUP_PRINTF  nopoll_strdup_printf
#  define NOPOLL_SHIM_STRDUP_PRINTFV nopoll_strdup_printfv
#  define NOPOLL_SHIM_LOG            __nopoll_log
#endif

/* va_copy is C99; gcc and clang provide __va_copy in every mode. */
#if defined(va_copy)
#  define NOPOLL_SHIM_VA_COPY(dst, src) va_copy (dst, src)
#elif defined(__va_copy)
#  define NOPOLL_SHIM_VA_COPY(dst, src) __va_copy (dst, src)
#else
#  define NOPOLL_SHIM_VA_COPY(dst, src) memcpy (&(dst), &(src), sizeof (va_list))
#endif

/* Bound of one formatted log line; longer lines are cut and end in "...". */
#define NOPOLL_SHIM_LOG_LINE 1024

/* Implemented in Rust (src/ffi/log.rs): routes one formatted line to the
 * context's log handler or the console. */
extern void nopoll_log_forward (noPollCtx * ctx, int level, const char * function_name,
				const char * file, int line, const char * text);

NOPOLL_SHIM_EXPORT char * NOPOLL_SHIM_STRDUP_PRINTFV (const char * chunk, va_list args);
NOPOLL_SHIM_EXPORT char * NOPOLL_SHIM_STRDUP_PRINTF (const char * chunk, ...);
NOPOLL_SHIM_EXPORT void NOPOLL_SHIM_LOG (noPollCtx * ctx, const char * function_name,
					 const char * file, int line, noPollDebugLevel level,
					 const char * message, ...);

/* printf into a new malloc'ed string: measure with a copy of args, then
 * format. NULL on a NULL format, a formatting error or no memory. Uses
 * args once (the caller still owns it and calls va_end). */
NOPOLL_SHIM_EXPORT char * NOPOLL_SHIM_STRDUP_PRINTFV (const char * chunk, va_list args)
{
	va_list   measure;
	int       needed;
	int       written;
	char    * result;

	if (chunk == NULL)
		return NULL;

	NOPOLL_SHIM_VA_COPY (measure, args);
	needed = vsnprintf (NULL, 0, chunk, measure);
	va_end (measure);
	if (needed < 0)
		return NULL;

	result = (char *) malloc ((size_t) needed + 1);
	if (result == NULL)
		return NULL;

	written = vsnprintf (result, (size_t) needed + 1, chunk, args);
	if (written != needed) {
		free (result);
		return NULL;
	}
	return result;
}

NOPOLL_SHIM_EXPORT char * NOPOLL_SHIM_STRDUP_PRINTF (const char * chunk, ...)
{
	va_list   args;
	char    * result;

	if (chunk == NULL)
		return NULL;

	va_start (args, chunk);
	result = NOPOLL_SHIM_STRDUP_PRINTFV (chunk, args);
	va_end (args);
	return result;
}

NOPOLL_SHIM_EXPORT void NOPOLL_SHIM_LOG (noPollCtx * ctx, const char * function_name,
					 const char * file, int line, noPollDebugLevel level,
					 const char * message, ...)
{
	char      text[NOPOLL_SHIM_LOG_LINE];
	va_list   args;
	int       written;

	if (message == NULL)
		return;

	va_start (args, message);
	written = vsnprintf (text, sizeof (text), message, args);
	va_end (args);

	if (written < 0) {
		/* Formatting failed: forward the raw format instead of nothing. */
		strncpy (text, message, sizeof (text) - 1);
		text[sizeof (text) - 1] = '\0';
	} else if ((size_t) written >= sizeof (text)) {
		/* Truncated: mark it. */
		memcpy (text + sizeof (text) - 4, "...", 4);
	}
	/* Belt and braces for pre-C99 vsnprintf implementations. */
	text[sizeof (text) - 1] = '\0';

	nopoll_log_forward (ctx, (int) level, function_name, file, line, text);
}

#ifdef NOPOLL_SHIM_NO_STD
/* The host's precompiled Rust core library is built for unwinding and
 * names these two symbols in code that a panic = "abort" build never runs.
 * Weak, so a program that has the real ones (libgcc_eh) keeps them; on a
 * firmware target whose core is built to abort they are never referenced. */
__attribute__((weak)) void rust_eh_personality (void)
{
}

__attribute__((weak)) void _Unwind_Resume (void * exception)
{
	(void) exception;
	abort ();
}
#endif
