/* cond_lex.c - the lexer of the condition language: turns the text at a
 * byte offset into one token (words, numbers, durations such as 7d,
 * strings with escapes, punctuation and comparison operators), skipping
 * blanks and # comments, and reports errors with their line and column.
 * Kept apart from the parser so each stays small. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "segment/cond_internal.h"

/* Column counts characters, not bytes: UTF-8 continuation bytes are skipped. */
bsp_err cond_error_at(bsp_error *err, bsp_err code, const char *text, size_t len, size_t pos,
                      const char *fmt, ...) {
    unsigned line = 1, column = 1;
    for (size_t i = 0; i < pos && i < len; i++) {
        if (text[i] == '\n') {
            line++;
            column = 1;
        } else if (((unsigned char)text[i] & 0xC0) != 0x80) {
            column++;
        }
    }
    bsp_error_clear(err);
    err->code = code;
    snprintf(err->at, sizeof err->at, "line %u, column %u", line, column);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    return code;
}

static bool is_word_start(char ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_';
}

static bool is_digit(char ch) {
    return ch >= '0' && ch <= '9';
}

static bool is_word_char(char ch) {
    return is_word_start(ch) || is_digit(ch);
}

static size_t skip_blanks(const char *text, size_t len, size_t pos) {
    while (pos < len) {
        char ch = text[pos];
        if (ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r') {
            pos++;
        } else if (ch == '#') {
            while (pos < len && text[pos] != '\n')
                pos++;
        } else {
            break;
        }
    }
    return pos;
}

static int hex_value(char ch) {
    if (is_digit(ch)) return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

/* Reads the 4 hex digits after "\u" at pos; -1 if they are not there. */
static long read_hex4(const char *text, size_t len, size_t pos) {
    if (pos + 4 > len) return -1;
    long value = 0;
    for (size_t i = 0; i < 4; i++) {
        int digit = hex_value(text[pos + i]);
        if (digit < 0) return -1;
        value = value * 16 + digit;
    }
    return value;
}

static size_t utf8_encode(unsigned long cp, char *out) {
    char buf[4];
    size_t n;
    if (cp < 0x80) {
        buf[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        buf[0] = (char)(0xC0 | (cp >> 6));
        buf[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        buf[0] = (char)(0xE0 | (cp >> 12));
        buf[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        buf[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        buf[0] = (char)(0xF0 | (cp >> 18));
        buf[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        buf[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        buf[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    if (out) memcpy(out, buf, n);
    return n;
}

/* Reads a \uXXXX escape (and its low surrogate) at pos (the backslash).
 * Returns the bytes of source consumed, 0 if invalid; *cp gets the value. */
static size_t read_unicode_escape(const char *text, size_t len, size_t pos, unsigned long *cp) {
    long high = read_hex4(text, len, pos + 2);
    if (high < 0 || high == 0) return 0;
    if (high >= 0xDC00 && high <= 0xDFFF) return 0;
    if (high < 0xD800 || high > 0xDBFF) {
        *cp = (unsigned long)high;
        return 6;
    }
    if (pos + 8 > len || text[pos + 6] != '\\' || text[pos + 7] != 'u') return 0;
    long low = read_hex4(text, len, pos + 8);
    if (low < 0xDC00 || low > 0xDFFF) return 0;
    *cp = 0x10000 + (((unsigned long)high - 0xD800) << 10) + ((unsigned long)low - 0xDC00);
    return 12;
}

static char simple_escape(char ch) {
    switch (ch) {
    case '"':
        return '"';
    case '\\':
        return '\\';
    case 'n':
        return '\n';
    case 't':
        return '\t';
    default:
        return 0;
    }
}

/* Walks a string token starting at its quote. With out == NULL it validates
 * (filling err); with out it writes the decoded bytes. Returns false on error. */
static bool walk_string(const char *text, size_t len, size_t start, cond_token *tok, char *out,
                        bsp_error *err) {
    size_t pos = start + 1, written = 0;
    while (pos < len && text[pos] != '"') {
        char ch = text[pos];
        if (ch == '\n' || ch == '\0') break;
        if (ch != '\\') {
            if (out) out[written] = ch;
            written++;
            pos++;
            continue;
        }
        char simple = pos + 1 < len ? simple_escape(text[pos + 1]) : 0;
        if (simple) {
            if (out) out[written] = simple;
            written++;
            pos += 2;
            continue;
        }
        unsigned long cp = 0;
        size_t used =
            pos + 1 < len && text[pos + 1] == 'u' ? read_unicode_escape(text, len, pos, &cp) : 0;
        if (!used) {
            cond_error_at(err, BSP_ETYPE, text, len, pos,
                          "invalid escape in string (use \\\" \\\\ \\n \\t or \\uXXXX, "
                          "not \\u0000)");
            return false;
        }
        written += utf8_encode(cp, out ? out + written : NULL);
        pos += used;
    }
    if (pos >= len || text[pos] != '"') {
        cond_error_at(err, BSP_ETYPE, text, len, start, "unterminated string: expected '\"'");
        return false;
    }
    tok->kind = TOK_STRING;
    tok->len = pos + 1 - start;
    tok->value_len = written;
    return true;
}

void cond_decode_string(const char *text, const cond_token *tok, char *out) {
    cond_token copy = *tok;
    bsp_error unused;
    walk_string(text, tok->start + tok->len, tok->start, &copy, out, &unused);
}

static double unit_ms(char unit) {
    switch (unit) {
    case 's':
        return 1000.0;
    case 'm':
        return 60000.0;
    case 'h':
        return 3600000.0;
    case 'd':
        return 86400000.0;
    case 'w':
        return 604800000.0;
    default:
        return 0;
    }
}

/* A number (optionally negative, with a fraction) and an optional unit. */
static bool lex_number(const char *text, size_t len, size_t start, cond_token *tok,
                       bsp_error *err) {
    size_t pos = start;
    if (text[pos] == '-') pos++;
    while (pos < len && is_digit(text[pos]))
        pos++;
    if (pos + 1 < len && text[pos] == '.' && is_digit(text[pos + 1])) {
        pos++;
        while (pos < len && is_digit(text[pos]))
            pos++;
    }
    char digits[64];
    size_t ndigits = pos - start;
    if (ndigits >= sizeof digits) {
        cond_error_at(err, BSP_ETYPE, text, len, start, "number is too long");
        return false;
    }
    memcpy(digits, text + start, ndigits);
    digits[ndigits] = '\0';
    tok->kind = TOK_NUMBER;
    tok->num = strtod(digits, NULL);
    size_t unit_end = pos;
    while (unit_end < len && is_word_char(text[unit_end]))
        unit_end++;
    if (unit_end == pos) {
        tok->len = pos - start;
        return true;
    }
    if (unit_end - pos != 1 || unit_ms(text[pos]) == 0) {
        cond_error_at(err, BSP_ETYPE, text, len, pos,
                      "unknown duration unit '%.*s' (s, m, h, d, w)", (int)(unit_end - pos),
                      text + pos);
        return false;
    }
    if (tok->num < 0) {
        cond_error_at(err, BSP_ETYPE, text, len, start, "a duration cannot be negative");
        return false;
    }
    tok->kind = TOK_DURATION;
    tok->num *= unit_ms(text[pos]);
    tok->len = unit_end - start;
    return true;
}

/* Operators and punctuation: sets kind and len, false if not one. */
static bool lex_symbol(const char *text, size_t len, size_t pos, cond_token *tok) {
    static const struct {
        const char *text;
        cond_tok_kind kind;
    } symbols[] = {
        {"!=", TOK_NE},      {"<=", TOK_LE},      {">=", TOK_GE},    {"=", TOK_EQ},
        {"<", TOK_LT},       {">", TOK_GT},       {"(", TOK_LPAREN}, {")", TOK_RPAREN},
        {"[", TOK_LBRACKET}, {"]", TOK_RBRACKET}, {",", TOK_COMMA},  {".", TOK_DOT},
    };
    for (size_t i = 0; i < sizeof symbols / sizeof symbols[0]; i++) {
        size_t n = strlen(symbols[i].text);
        if (pos + n <= len && memcmp(text + pos, symbols[i].text, n) == 0) {
            tok->kind = symbols[i].kind;
            tok->len = n;
            return true;
        }
    }
    return false;
}

bool cond_lex(const char *text, size_t len, size_t pos, cond_token *tok, bsp_error *err) {
    pos = skip_blanks(text, len, pos);
    memset(tok, 0, sizeof *tok);
    tok->start = pos;
    if (pos >= len) {
        tok->kind = TOK_END;
        return true;
    }
    char ch = text[pos];
    if (is_word_start(ch)) {
        size_t end = pos;
        while (end < len && is_word_char(text[end]))
            end++;
        tok->kind = TOK_WORD;
        tok->len = end - pos;
        return true;
    }
    if (is_digit(ch) || (ch == '-' && pos + 1 < len && is_digit(text[pos + 1])))
        return lex_number(text, len, pos, tok, err);
    if (ch == '"') return walk_string(text, len, pos, tok, NULL, err);
    if (lex_symbol(text, len, pos, tok)) return true;
    if ((unsigned char)ch >= 0x20 && (unsigned char)ch < 0x7F)
        cond_error_at(err, BSP_ETYPE, text, len, pos, "unexpected character '%c'", ch);
    else
        cond_error_at(err, BSP_ETYPE, text, len, pos, "unexpected character (byte 0x%02X)",
                      (unsigned char)ch);
    return false;
}
