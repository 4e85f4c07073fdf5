/* number.c - doubles as text without printf. json_format_double gives
 * exactly what snprintf's "%.*g" gives, for the numbers Bespoke writes most:
 * decay scores and money, between 1e-4 and 1e15, which print without an
 * exponent. The digits are the double's exact binary value times a power
 * of ten, rounded half to even as glibc rounds, in 128-bit integers: a
 * double is m * 2^e with m below 2^53, and for these numbers m * 10^k stays
 * below 2^123. Anything else goes to snprintf. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "json/json.h"

typedef unsigned __int128 u128;

/* 10^0 .. 10^19; pow10_u128 goes to 10^21, below 2^70. */
static const uint64_t pow10_u64[] = {1ull,
                                     10ull,
                                     100ull,
                                     1000ull,
                                     10000ull,
                                     100000ull,
                                     1000000ull,
                                     10000000ull,
                                     100000000ull,
                                     1000000000ull,
                                     10000000000ull,
                                     100000000000ull,
                                     1000000000000ull,
                                     10000000000000ull,
                                     100000000000000ull,
                                     1000000000000000ull,
                                     10000000000000000ull,
                                     100000000000000000ull,
                                     1000000000000000000ull,
                                     10000000000000000000ull};

static u128 pow10_u128(int k) {
    return k < 20 ? pow10_u64[k] : (u128)pow10_u64[19] * pow10_u64[k - 19];
}

/* m * 2^e * 10^k, m < 2^53, k <= 21, -127 < e <= 0 (the callers' range
 * keeps it there): its integer part into *whole, and rounded half to even
 * as the return value. */
static u128 scaled(uint64_t m, int e, int k, u128 *whole) {
    u128 p = (u128)m * pow10_u128(k);
    if (e == 0) return *whole = p;
    int s = -e;
    u128 q = p >> s, r = p & (((u128)1 << s) - 1), half = (u128)1 << (s - 1);
    *whole = q;
    return r > half || (r == half && (q & 1)) ? q + 1 : q;
}

/* Writes the fixed-point form of d * 10^(x+1-digits) (d has `digits`
 * digits): trailing zeros of the fraction and a bare point dropped, as %g
 * does. Returns the length. */
static size_t write_fixed(char *out, bool negative, uint64_t d, int digits, int x) {
    char buf[24] = {0};
    for (int i = digits - 1; i >= 0; i--) {
        buf[i] = (char)('0' + d % 10);
        d /= 10;
    }
    int last = digits - 1;  /* the last digit kept: trailing zeros after the point go */
    int int_digits = x + 1; /* digits before the point; <= 0 when |v| < 1 */
    while (last >= 0 && last >= int_digits && buf[last] == '0')
        last--;
    size_t n = 0;
    if (negative) out[n++] = '-';
    if (int_digits <= 0) {
        out[n++] = '0';
        out[n++] = '.';
        for (int i = 0; i < -int_digits; i++)
            out[n++] = '0';
        memcpy(out + n, buf, (size_t)last + 1);
        n += (size_t)last + 1;
    } else {
        memcpy(out + n, buf, (size_t)int_digits);
        n += (size_t)int_digits;
        if (last >= int_digits) {
            out[n++] = '.';
            memcpy(out + n, buf + int_digits, (size_t)(last - int_digits + 1));
            n += (size_t)(last - int_digits + 1);
        }
    }
    out[n] = '\0';
    return n;
}

/* The fast path; 0 when v is not one it handles. */
static size_t format_fixed(char *out, double v, int digits) {
    double a = fabs(v);
    if (!(a >= 1e-4 && a < 1e15)) return 0;
    int e2;
    double frac = frexp(a, &e2); /* a = frac * 2^e2, frac in [0.5, 1) */
    uint64_t m = (uint64_t)ldexp(frac, 53);
    int e = e2 - 53;
    while (e < 0 && !(m & 1)) { /* fewer bits to shift: same value */
        m >>= 1;
        e++;
    }
    if (e > 0) return 0; /* an integer of 2^53 or more: not in range anyway */
    /* x: the decimal exponent of a, exactly: the integer part of a scaled
     * to `digits` digits has `digits` digits. a is in [2^(e2-1), 2^e2), so
     * (e2 - 1) * log10(2) is x or one below it. */
    int x = (int)floor((e2 - 1) * 0.30102999566398120), k = 0;
    u128 whole = 0, d = 0;
    for (int tries = 0;; tries++) {
        k = digits - 1 - x;
        if (tries == 3 || k < 0 || k > 21) return 0;
        d = scaled(m, e, k, &whole);
        if (whole >= pow10_u128(digits))
            x++;
        else if (whole < pow10_u128(digits - 1))
            x--;
        else
            break;
    }
    if (d == pow10_u128(digits)) { /* 99..9.5 rounds up to the next power of ten */
        x++;
        d = pow10_u128(digits - 1);
    }
    if (x < -4 || x >= digits) return 0;                    /* %g would use an exponent */
    return write_fixed(out, v < 0, (uint64_t)d, digits, x); /* d < 10^17 */
}

size_t json_format_double(char out[JSON_NUMBER_MAX], double v, int digits) {
    if (digits < 1) digits = 1;
    if (digits > 17) digits = 17;
    size_t n = isfinite(v) ? format_fixed(out, v, digits) : 0;
    if (n) return n;
    int len = snprintf(out, JSON_NUMBER_MAX, "%.*g", digits, v);
    return len > 0 ? (size_t)len : 0;
}
