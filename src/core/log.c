/* log.c - one-line log records on stderr: time, level, message. Callers must
 * never pass secrets or raw e-mail addresses. */
#include "core/core.h"

#include <stdio.h>

static bsp_log_level log_min_level = BSP_LOG_INFO;

void bsp_log_set_level(bsp_log_level lvl) {
    log_min_level = lvl;
}

void bsp_log(bsp_log_level lvl, const char *fmt, ...) {
    static const char *names[] = {"debug", "info", "warn", "error"};
    if (lvl < log_min_level) return;
    char when[32];
    bsp_time_format(bsp_now_ms(), when, sizeof when);
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s %-5s %s\n", when, names[lvl], line);
}
