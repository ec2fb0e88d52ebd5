/* status.c — per-thread error messages and status names. Touches nothing but its own thread-local buffer. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core.h"

static _Thread_local char last_error[1024];

lens_status core_fail(lens_status code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return code;
}

lens_status core_fail_context(lens_status code, const char *fmt, ...) {
    char prefix[512], old[sizeof last_error];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, last_error, sizeof old);
    size_t n = strlen(prefix);
    if (n > sizeof last_error - 3) n = sizeof last_error - 3;
    memcpy(last_error, prefix, n);
    memcpy(last_error + n, ": ", 2);
    size_t rest = sizeof last_error - n - 3, len = strlen(old);
    if (len > rest) len = rest;
    memcpy(last_error + n + 2, old, len);
    last_error[n + 2 + len] = 0;
    return code;
}

const char *core_last_error(void) { return last_error; }
void core_clear_error(void) { last_error[0] = 0; }

const char *lens_last_error(void) { return last_error; }

const char *lens_status_name(lens_status status) {
    switch (status) {
    case LENS_OK: return "ok";
    case LENS_ERR_INVALID_ARGUMENT: return "invalid argument";
    case LENS_ERR_IO: return "I/O error";
    case LENS_ERR_FORMAT: return "format error";
    case LENS_ERR_UNSUPPORTED: return "unsupported";
    case LENS_ERR_OUT_OF_MEMORY: return "out of memory";
    case LENS_ERR_SHAPE: return "shape error";
    case LENS_ERR_LIMIT: return "limit exceeded";
    }
    return "unknown status";
}
