/* time.c - wall and monotonic clocks, sleeping, ISO 8601 parsing and formatting. All
 * times inside Bespoke are int64 milliseconds since the Unix epoch, UTC. */
#include "core/core.h"

#include <ctype.h>
#include <stdio.h>
#include <time.h>

int64_t bsp_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint64_t bsp_mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void bsp_sleep_ms(unsigned ms) {
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar. */
static int64_t days_from_civil(int64_t y, int m, int d) {
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const int64_t yoe = y - era * 400;
    const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static bool read_digits(const char **p, int n, int *out) {
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*p)[i])) return false;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return true;
}

bool bsp_time_parse(const char *s, int64_t *out_ms) {
    if (!s) return false;
    const char *p = s;
    int y, mo, d, h = 0, mi = 0, sec = 0, ms = 0;
    if (!read_digits(&p, 4, &y) || *p++ != '-' || !read_digits(&p, 2, &mo) || *p++ != '-' ||
        !read_digits(&p, 2, &d))
        return false;
    if (mo < 1 || mo > 12 || d < 1 || d > 31) return false;
    if (*p == 'T' || *p == 't' || *p == ' ') {
        p++;
        if (!read_digits(&p, 2, &h) || *p++ != ':' || !read_digits(&p, 2, &mi)) return false;
        if (*p == ':') {
            p++;
            if (!read_digits(&p, 2, &sec)) return false;
            if (*p == '.' || *p == ',') {
                p++;
                int digits = 0;
                while (isdigit((unsigned char)*p)) {
                    if (digits < 3) ms = ms * 10 + (*p - '0');
                    digits++;
                    p++;
                }
                if (digits == 0) return false;
                for (; digits < 3; digits++)
                    ms *= 10;
            }
        }
        if (h > 23 || mi > 59 || sec > 60) return false;
    }
    int64_t offset_min = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p == '-' ? -1 : 1, oh, om = 0;
        p++;
        if (!read_digits(&p, 2, &oh)) return false;
        if (*p == ':') p++;
        if (isdigit((unsigned char)*p) && !read_digits(&p, 2, &om)) return false;
        offset_min = sign * (oh * 60 + om);
    }
    if (*p != '\0') return false;
    int64_t days = days_from_civil(y, mo, d);
    int64_t secs = days * 86400 + h * 3600 + mi * 60 + sec - offset_min * 60;
    *out_ms = secs * 1000 + ms;
    return true;
}

/* y-m-d of a day count since 1970-01-01 (the inverse of days_from_civil). */
static void civil_from_days(int64_t z, int64_t *y, int *m, int *d) {
    z += 719468;
    const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const int64_t doe = z - era * 146097;
    const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

static char *put_digits(char *p, int64_t v, int width) {
    for (int i = width - 1; i >= 0; i--) {
        p[i] = (char)('0' + v % 10);
        v /= 10;
    }
    return p + width;
}

#define ISO_FIRST_MS (-62167219200000LL) /* 0000-01-01T00:00:00.000Z */
#define ISO_LAST_MS 253402300799999LL    /* 9999-12-31T23:59:59.999Z */

bool bsp_time_is_iso(int64_t ms) {
    return ms >= ISO_FIRST_MS && ms <= ISO_LAST_MS;
}

/* Arithmetic, no gmtime_r: it runs for every event (timestamp, receivedAt). */
void bsp_time_format(int64_t ms, char *out, size_t cap) {
    int64_t secs = ms >= 0 ? ms / 1000 : (ms - 999) / 1000;
    int frac = (int)(ms - secs * 1000);
    int64_t days = secs >= 0 ? secs / 86400 : (secs - 86399) / 86400;
    int64_t rem = secs - days * 86400;
    int64_t y;
    int m, d;
    civil_from_days(days, &y, &m, &d);
    if (y < 0 || y > 9999 || cap < 25) {
        snprintf(out, cap, "%lld", (long long)ms); /* outside ISO's 4-digit years */
        return;
    }
    char *p = out;
    p = put_digits(p, y, 4);
    *p++ = '-';
    p = put_digits(p, m, 2);
    *p++ = '-';
    p = put_digits(p, d, 2);
    *p++ = 'T';
    p = put_digits(p, rem / 3600, 2);
    *p++ = ':';
    p = put_digits(p, rem / 60 % 60, 2);
    *p++ = ':';
    p = put_digits(p, rem % 60, 2);
    *p++ = '.';
    p = put_digits(p, frac, 3);
    *p++ = 'Z';
    *p = '\0';
}
