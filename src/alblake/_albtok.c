/*
 * Native fast path of alblake.parse: tokenizes a block of ALB access-log lines in one pass and writes
 * Arrow-ready column buffers (values, validity bitmaps, string spans).
 *
 * Design rule: this code ACCEPTS only lines whose result it computes exactly as the Python reference path
 * (alblake.parse.parse_line_fields + _derive) does, and DECLINES everything else (invalid UTF-8, stray quotes,
 * odd numbers, unusual dates, malformed addresses, missing required fields, ...). A declined line is then
 * CLASSIFIED: when the reference path would certainly reject it, the line gets the kind of reason it would
 * give (classify_line repeats its checks in their order), so junk is counted here in bulk instead of being
 * parsed line by line in Python; any line the reference path might keep is left to it. Being conservative
 * therefore costs speed on rare lines, never correctness.
 *
 * C99 plus GCC/Clang builtins (__builtin_ctz); libc memchr/memcpy/strtod; SSE2 or NEON where present. No Python API:
 * loaded with ctypes, cross-compiled for Lambda (aarch64). tests/test_native_cross.py checks that the SSE2,
 * NEON (under qemu) and portable SWAR builds give identical output.
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#if defined(__i386__) && !defined(__SSE2_MATH__)
#error "x87 double rounding would break the exact float conversion: build with SSE2 math"
#endif
#if defined(__SSE2__)
#include <emmintrin.h>
#elif defined(__aarch64__)
#include <arm_neon.h>
#endif

/* Field kinds; must match native.KIND_* (parse._native_spec maps schema types onto them). */
enum { K_STRING = 0, K_TIMESTAMP = 1, K_FLOAT64 = 2, K_INT32 = 3, K_INT64 = 4, K_ADDRESS = 5, K_REQUEST = 6 };
/* Field flags; must match native.FLAG_*. */
enum { F_REQUIRED = 1, F_ELB_FORM = 2 };
/* Gather flags; must match native.GATHER_*. */
enum { G_DECODE_ESCAPES = 1, G_TRIM_SPACES = 2 };

#define MAX_FIELDS 64

/* Why a line is not a row, as the reference path says it (parse.parse_line_fields, then parse._problems);
 * parse._rejection_kind names each. A line's code is reason * MAX_FIELDS + the field the reason names (0 for
 * reasons about the whole line). Must match native.REJECTION_REASONS. */
enum {
    R_UNDECIDED = 0, /* not decided here: the reference path parses the line (it may be a row) */
    R_EMPTY,
    R_INVALID_UTF8,
    R_CARRIAGE_RETURN,
    R_TOO_LONG,
    R_UNTERMINATED_QUOTE,
    R_STRAY_QUOTE,
    R_NO_SPACE_AFTER_QUOTE,
    R_TOO_FEW_FIELDS,
    R_INVALID_VALUE,
    R_OUT_OF_RANGE,
    R_MISSING,
    R_ELB_FORM,
    R_MALFORMED_ADDRESS,
    R_REASONS
};

typedef struct {
    int32_t start;
    int32_t len; /* -1: NULL */
} span_t;

static inline int is_digit(uint8_t c) { return c >= '0' && c <= '9'; }

#define INT32_LIMIT (1ull << 31)
#define INT64_LIMIT (1ull << 63)

/* Decimal integer "-?[0-9]+" in [-limit, limit), read as Python's int() reads it (leading zeros included);
 * returns 0 when not of that form or out of range. */
static int parse_int(const uint8_t *s, int32_t n, uint64_t limit, int64_t *out) {
    int32_t i = 0;
    int negative = 0;
    if (n > 0 && s[0] == '-') {
        negative = 1;
        i = 1;
    }
    if (i >= n) return 0;
    while (i < n - 1 && s[i] == '0') i++;
    if (n - i > 19) return 0; /* at least 10^19, beyond any limit (and 19 digits fit in a uint64_t) */
    uint64_t value = 0;
    for (; i < n; i++) {
        if (!is_digit(s[i])) return 0;
        value = value * 10 + (uint64_t)(s[i] - '0');
    }
    if (negative ? value > limit : value >= limit) return 0;
    *out = negative ? (int64_t)(0 - value) : (int64_t)value;
    return 1;
}

static int all_digits(const uint8_t *s, int32_t n) {
    if (n < 1) return 0;
    for (int32_t i = 0; i < n; i++)
        if (!is_digit(s[i])) return 0;
    return 1;
}

/* schema.VALUE_TEXT, matched whole: "-?[0-9]+" and "-?[0-9]+(?:[.][0-9]+)?". */
static int integer_text(const uint8_t *s, int32_t n) {
    int sign = n > 0 && s[0] == '-';
    return all_digits(s + sign, n - sign);
}

static int number_text(const uint8_t *s, int32_t n) {
    if (n < 1) return 0;
    int sign = s[0] == '-';
    const uint8_t *point = memchr(s, '.', (size_t)n);
    if (point == NULL) return all_digits(s + sign, n - sign);
    int32_t at = (int32_t)(point - s);
    return all_digits(s + sign, at - sign) && all_digits(point + 1, n - at - 1);
}

/* Decimal text converted by strtod, which rounds correctly as Python's float() does (to infinity beyond the
 * largest double); 0 when the text is too long to copy or strtod did not read it whole (a locale whose decimal
 * point is not '.'). */
static int read_with_strtod(const uint8_t *s, int32_t n, double *out) {
    char text[4096]; /* a longer number makes a line long enough for the reference path to keep pace */
    char *end;
    if (n >= (int32_t)sizeof text) return 0;
    memcpy(text, s, (size_t)n);
    text[n] = 0;
    *out = strtod(text, &end);
    return end == text + n;
}

/* "-?[0-9]+(\.[0-9]+)?" converted exactly as Python's float() does: a mantissa up to 2^53 with at most 22
 * decimals by one IEEE division of two exact doubles (correctly rounded), other text of that form by strtod.
 * Else 0, and the reference path decides. */
static int parse_float(const uint8_t *s, int32_t n, double *out) {
    static const double powers[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                                      1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
    int32_t i = 0;
    int negative = 0;
    if (n > 0 && s[0] == '-') {
        negative = 1;
        i = 1;
    }
    uint64_t mantissa = 0;
    int32_t int_digits = 0, frac_digits = 0;
    for (; i < n && is_digit(s[i]); i++, int_digits++) {
        mantissa = mantissa * 10 + (uint64_t)(s[i] - '0');
        if (mantissa > (1ull << 53)) goto long_text;
    }
    if (int_digits == 0) return 0;
    if (i < n) {
        if (s[i] != '.') return 0;
        for (i++; i < n && is_digit(s[i]); i++, frac_digits++) {
            mantissa = mantissa * 10 + (uint64_t)(s[i] - '0');
            if (mantissa > (1ull << 53) || frac_digits >= 22) goto long_text;
        }
        if (frac_digits == 0 || i < n) return 0;
    }
    double value = (double)mantissa / powers[frac_digits];
    *out = negative ? -value : value;
    return 1;
long_text:
    return number_text(s, n) && read_with_strtod(s, n, out) && isfinite(*out);
}

static int64_t days_from_civil(int64_t y, int64_t m, int64_t d) { /* proleptic Gregorian, 1970-01-01 = 0 */
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int two_digits(const uint8_t *s, int *out) {
    if (!is_digit(s[0]) || !is_digit(s[1])) return 0;
    *out = (s[0] - '0') * 10 + (s[1] - '0');
    return 1;
}

/* The last date converted: the lines of a log share a handful of dates, so most lookups skip the calendar. */
typedef struct {
    uint8_t text[10]; /* "YYYY-MM-DD" */
    int64_t days;     /* since 1970-01-01; valid when text[0] != 0 */
} date_cache_t;

/* Days since the epoch of a "YYYY-MM-DD" date; 0 when invalid (year 0, month 13, Feb 30, ...). */
static int parse_date(const uint8_t *s, date_cache_t *cache, int64_t *days) {
    static const int month_days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (cache->text[0] && memcmp(s, cache->text, 10) == 0) {
        *days = cache->days;
        return 1;
    }
    int century, year2, month, day;
    if (s[4] != '-' || s[7] != '-' || !two_digits(s, &century) || !two_digits(s + 2, &year2) ||
        !two_digits(s + 5, &month) || !two_digits(s + 8, &day))
        return 0;
    int year = century * 100 + year2;
    int leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    if (year < 1 || month < 1 || month > 12 || day < 1) return 0;
    if (day > month_days[month - 1] + (month == 2 && leap)) return 0;
    *days = days_from_civil(year, month, day);
    memcpy(cache->text, s, 10);
    cache->days = *days;
    return 1;
}

/* "YYYY-MM-DDTHH:MM:SS(.f{1,6})?Z" as microseconds since the epoch (UTC); 0 when invalid or unusual. */
static int parse_timestamp(const uint8_t *s, int32_t n, date_cache_t *cache, int64_t *out) {
    if (n < 20 || n == 21 || n > 27) return 0;
    if (s[10] != 'T' || s[13] != ':' || s[16] != ':' || s[n - 1] != 'Z') return 0;
    int64_t days;
    int hour, minute, second;
    if (!parse_date(s, cache, &days) || !two_digits(s + 11, &hour) || !two_digits(s + 14, &minute) ||
        !two_digits(s + 17, &second))
        return 0;
    if (hour > 23 || minute > 59 || second > 59) return 0;
    int64_t micros = 0;
    if (n == 27) { /* ALB's own format: six digits */
        if (s[19] != '.') return 0;
        unsigned d[6], bad = 0;
        for (int k = 0; k < 6; k++) {
            d[k] = (unsigned)s[20 + k] - '0'; /* wraps above 9 for any non-digit */
            bad |= d[k] > 9;
        }
        if (bad) return 0;
        micros = ((((d[0] * 10 + d[1]) * 10 + d[2]) * 10 + d[3]) * 10 + d[4]) * 10 + d[5];
    } else if (n > 20) {
        if (s[19] != '.') return 0;
        int digits = 0;
        for (int32_t i = 20; i < n - 1; i++, digits++) {
            if (!is_digit(s[i])) return 0;
            micros = micros * 10 + (s[i] - '0');
        }
        for (; digits < 6; digits++) micros *= 10;
    }
    *out = (days * 86400 + hour * 3600 + minute * 60 + second) * 1000000 + micros;
    return 1;
}

/* A byte that ends a field's text. */
static inline int is_special(uint8_t c, int bare) {
    return c == '"' || c == '\n' || c == '\r' || c >= 0x80 || (bare && c == ' ');
}

/* Eight bytes at a time (SWAR): a mask with the high bit set in each byte equal to c. Little-endian only. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the SWAR scan assumes a little-endian target (x86_64, aarch64)"
#endif
#define LOW7 0x7F7F7F7F7F7F7F7Full
#define HIGH1 0x8080808080808080ull

static inline uint64_t bytes_equal(uint64_t x, uint8_t c) {
    uint64_t y = x ^ (0x0101010101010101ull * c);
    return ~(((y & LOW7) + LOW7) | y | LOW7); /* exact: no false positives from carries */
}

/* Index of the first byte at or after pos that is '"', '\n', '\r', >= 0x80, or for a bare field ' '.
 * The block ends with '\n', so there always is one. */
static inline int32_t next_special(const uint8_t *buf, int32_t len, int32_t pos, int bare) {
#if defined(__SSE2__)
    const __m128i quote = _mm_set1_epi8('"'), newline = _mm_set1_epi8('\n'), cr = _mm_set1_epi8('\r');
    const __m128i space = _mm_set1_epi8(bare ? ' ' : '"');
    for (; pos + 16 <= len; pos += 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(buf + pos));
        __m128i hits = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, quote), _mm_cmpeq_epi8(x, newline)),
                                    _mm_cmpeq_epi8(x, cr));
        hits = _mm_or_si128(_mm_or_si128(hits, _mm_cmpeq_epi8(x, space)), x); /* x: its high bit = byte >= 0x80 */
        int mask = _mm_movemask_epi8(hits);
        if (mask) return pos + __builtin_ctz((unsigned)mask);
    }
#elif defined(__aarch64__)
    const uint8x16_t quote = vdupq_n_u8('"'), newline = vdupq_n_u8('\n'), cr = vdupq_n_u8('\r');
    const uint8x16_t space = vdupq_n_u8(bare ? ' ' : '"'), high = vdupq_n_u8(0x80);
    for (; pos + 16 <= len; pos += 16) {
        uint8x16_t x = vld1q_u8(buf + pos);
        uint8x16_t hits = vorrq_u8(vorrq_u8(vceqq_u8(x, quote), vceqq_u8(x, newline)), vceqq_u8(x, cr));
        hits = vorrq_u8(vorrq_u8(hits, vceqq_u8(x, space)), vcgeq_u8(x, high));
        /* narrow each 0x00/0xFF byte to 4 bits of a 64-bit word */
        uint64_t mask = vget_lane_u64(vreinterpret_u64_u8(vshrn_n_u16(vreinterpretq_u16_u8(hits), 4)), 0);
        if (mask) return pos + (int32_t)(__builtin_ctzll(mask) >> 2);
    }
#endif
    for (; pos + 8 <= len; pos += 8) {
        uint64_t x;
        memcpy(&x, buf + pos, 8);
        uint64_t stops = bytes_equal(x, '"') | bytes_equal(x, '\n') | bytes_equal(x, '\r') | (x & HIGH1);
        if (bare) stops |= bytes_equal(x, ' ');
        if (stops) return pos + (__builtin_ctzll(stops) >> 3);
    }
    while (!is_special(buf[pos], bare)) pos++; /* the last bytes of the block */
    return pos;
}

/* Length of the valid UTF-8 sequence at s (s[0] >= 0x80), strict as Python's decoder (no overlongs, no
 * surrogates, nothing above U+10FFFF); 0 when invalid. Reads no further than the first byte that is not a
 * continuation byte, so never past the '\n' that ends a block. */
static inline int utf8_sequence(const uint8_t *s) {
    uint8_t c = s[0], lo = 0x80, hi = 0xBF;
    int extra;
    if (c >= 0xC2 && c <= 0xDF) {
        extra = 1;
    } else if (c >= 0xE0 && c <= 0xEF) {
        extra = 2;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        extra = 3;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else {
        return 0;
    }
    if (s[1] < lo || s[1] > hi) return 0;
    for (int k = 2; k <= extra; k++)
        if (s[k] < 0x80 || s[k] > 0xBF) return 0;
    return extra + 1;
}

/* Where Python's strict UTF-8 decoder fails on s[0, n) (the start of the first invalid sequence), or -1. */
static int64_t utf8_error_at(const uint8_t *s, int64_t n) {
    int64_t i = 0;
    while (i < n) {
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        int length = 0;
        if (n - i >= 4) {
            length = utf8_sequence(s + i);
        } else { /* near the end: a copy padded with a byte that ends any sequence */
            uint8_t tail[4] = {0, 0, 0, 0};
            memcpy(tail, s + i, (size_t)(n - i));
            length = utf8_sequence(tail);
        }
        if (!length) return i;
        i += length;
    }
    return -1;
}

static int valid_utf8(const uint8_t *s, int64_t n) { return utf8_error_at(s, n) < 0; }

/* The end of a field's text from pos: the first '"', '\n', '\r' or (bare) ' ' after valid UTF-8 text; an
 * invalid UTF-8 sequence ends it too (the caller then finds a byte >= 0x80 there and declines the line). */
static inline int32_t field_end(const uint8_t *buf, int32_t len, int32_t pos, int bare) {
    for (;;) {
        pos = next_special(buf, len, pos, bare);
        int length = buf[pos] >= 0x80 ? utf8_sequence(buf + pos) : 0;
        if (!length) return pos;
        pos += length;
    }
}

/*
 * Splits the line starting at p into fields like parse.tokenize (single spaces separate, '"' delimits quoted
 * fields, no escapes), in one pass that also finds the line end: *newline gets the index of its '\n' (a
 * CRLF's '\r' ends the last field). Returns the field count, or -1 to decline the line (stray or unbalanced
 * quote, a CR inside the line, invalid UTF-8).
 */
static int tokenize_line(const uint8_t *buf, int32_t len, int32_t p, int32_t *newline, span_t *fields,
                         int max_fields) {
    int count = 0;
    int32_t pos = p;
    for (;;) {
        int32_t start, stop;
        if (buf[pos] == '"') {
            start = ++pos;
            pos = field_end(buf, len, pos, 0);
            if (buf[pos] != '"') goto decline;
            stop = pos++;
        } else {
            start = pos;
            pos = field_end(buf, len, pos, 1);
            stop = pos;
        }
        if (count < max_fields) {
            fields[count].start = start;
            fields[count].len = stop - start;
        }
        count++;
        uint8_t c = buf[pos];
        if (c == ' ') {
            pos++;
            continue;
        }
        if (c == '\n' || (c == '\r' && buf[pos + 1] == '\n')) {
            *newline = pos + (c == '\r');
            return count;
        }
        goto decline; /* a quote inside a bare field, text after a closing quote, a lone CR, invalid UTF-8 */
    }
decline:
    *newline = (int32_t)((const uint8_t *)memchr(buf + pos, '\n', (size_t)(len - pos)) - buf); /* buf ends with '\n' */
    return -1;
}

static inline int is_dash(const uint8_t *buf, span_t f) { return f.len == 1 && buf[f.start] == '-'; }

static inline span_t null_span(void) {
    span_t s = {0, -1};
    return s;
}

/* ''/'-' -> NULL (request verb and url) */
static inline span_t empty_or_dash_to_null(const uint8_t *buf, span_t s) {
    return (s.len == 0 || is_dash(buf, s)) ? null_span() : s;
}

/* Request 'VERB URL PROTO' -> three spans, as parse._split_request_exactly. */
static void split_request(const uint8_t *buf, span_t r, span_t *verb, span_t *url, span_t *proto) {
    *verb = *url = *proto = null_span();
    if (r.len < 0 || is_dash(buf, r)) return;
    int no_proto = r.len > 0 && buf[r.start + r.len - 1] == ' ';
    span_t body = {r.start, r.len - no_proto};
    int32_t first = -1, last = -1; /* the first and last space: verb and protocol are short, the URL not */
    for (int32_t i = body.start; i < body.start + body.len; i++) {
        if (buf[i] == ' ') {
            first = i;
            break;
        }
    }
    for (int32_t i = body.start + body.len - 1; first >= 0 && i >= first; i--) {
        if (buf[i] == ' ') {
            last = i;
            break;
        }
    }
    if (!no_proto && first >= 0 && last > first) {
        span_t v = {body.start, first - body.start}, u = {first + 1, last - first - 1};
        span_t p = {last + 1, body.start + body.len - last - 1};
        *verb = empty_or_dash_to_null(buf, v);
        *url = empty_or_dash_to_null(buf, u);
        *proto = is_dash(buf, p) ? null_span() : p;
    } else if (first >= 0) {
        span_t v = {body.start, first - body.start}, u = {first + 1, body.start + body.len - first - 1};
        *verb = empty_or_dash_to_null(buf, v);
        *url = empty_or_dash_to_null(buf, u);
    } else {
        *url = empty_or_dash_to_null(buf, body);
    }
}

/* 'type/name/id...': a non-empty segment without '/', '/', a non-empty segment without '/', '/'. */
static int has_elb_form(const uint8_t *buf, span_t f) {
    int32_t i = f.start, end = f.start + f.len;
    int32_t first = i;
    while (i < end && buf[i] != '/') i++;
    if (i == first || i == end) return 0;
    int32_t second = ++i;
    while (i < end && buf[i] != '/') i++;
    return i > second && i < end;
}

static inline int hex_value(uint8_t c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Replaces every \xHH (hex) of src by its byte, into dst; returns the decoded length. */
static int64_t decode_escapes(const uint8_t *src, int64_t n, uint8_t *dst) {
    int64_t out = 0;
    for (int64_t i = 0; i < n;) {
        int hi, lo;
        if (src[i] == '\\' && i + 3 < n && src[i + 1] == 'x' && (hi = hex_value(src[i + 2])) >= 0 &&
            (lo = hex_value(src[i + 3])) >= 0) {
            dst[out++] = (uint8_t)(hi * 16 + lo);
            i += 4;
        } else {
            dst[out++] = src[i++];
        }
    }
    return out;
}

static int has_escape(const uint8_t *s, int64_t n) {
    const uint8_t *end = s + n, *backslash = s;
    while ((backslash = memchr(backslash, '\\', (size_t)(end - backslash))) != NULL) {
        if (++backslash < end && *backslash == 'x') return 1;
    }
    return 0;
}

typedef struct {
    uint8_t *data;     /* capacity: len + 16 bytes (a column never holds more than the block) */
    int32_t *offsets;  /* max_rows + 1 */
    uint8_t *validity; /* bitmap, max_rows bits */
    int64_t used;      /* out: bytes used in data */
    int32_t flags;     /* G_* */
    int32_t unused;
} string_column_t;

/* Copies n bytes; short strings go in 16-byte moves (dst has 16 bytes of slack; src only when in bounds). */
static inline void copy_text(uint8_t *dst, const uint8_t *src, int64_t n, const uint8_t *src_end) {
    if (n + 16 <= src_end - src) {
        for (int64_t i = 0; i < n; i += 16) memcpy(dst + i, src + i, 16);
    } else {
        memcpy(dst, src, (size_t)n);
    }
}

/* Appends one value (NULL when s.len < 0) to a string column, trimming and decoding as its flags say. */
static inline void append_text(string_column_t *column, const uint8_t *buf, const uint8_t *buf_end, span_t s,
                               int64_t row, int line_has_backslash) {
    if (s.len > 0) {
        const uint8_t *src = buf + s.start;
        int64_t n = s.len;
        uint8_t *dst = column->data + column->used;
        if (column->flags & G_TRIM_SPACES) {
            while (n > 0 && src[0] == ' ') src++, n--;
            while (n > 0 && src[n - 1] == ' ') n--;
        }
        if (line_has_backslash && (column->flags & G_DECODE_ESCAPES) && has_escape(src, n)) {
            int64_t decoded = decode_escapes(src, n, dst);
            if (valid_utf8(dst, decoded)) {
                n = decoded;
            } else {
                memcpy(dst, src, (size_t)n);
            }
        } else {
            copy_text(dst, src, n, buf_end);
        }
        column->used += n;
    }
    column->offsets[row + 1] = (int32_t)column->used;
}

/* ------------------------------------------------------------------------------------------ classification */

static inline int32_t rejection(int reason, int32_t field) { return reason * MAX_FIELDS + field; }

/* A code point that Python's str.strip() removes (str.isspace()). */
static int is_python_space(uint32_t c) {
    return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

/* Whether valid UTF-8 text holds nothing but whitespace (Python: not text.strip()). */
static int is_blank(const uint8_t *s, int32_t n) {
    for (int32_t i = 0; i < n;) {
        uint32_t c = s[i];
        int length = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
        if (length > 1) {
            c &= 0x3Fu >> (length - 1);
            for (int k = 1; k < length; k++) c = (c << 6) | (s[i + k] & 0x3Fu);
        }
        if (!is_python_space(c)) return 0;
        i += length;
    }
    return 1;
}

/* Splits like parse.tokenize: the field count in *count and the first max_fields spans, or the tokenizer's
 * error as a rejection code. s[0, end) holds no '\r' and no '\n'. */
static int32_t split_like_reference(const uint8_t *s, int32_t end, span_t *fields, int32_t max_fields,
                                    int32_t *count) {
    int32_t pos = 0, k = 0;
    for (;;) {
        span_t field;
        if (pos < end && s[pos] == '"') {
            const uint8_t *close = memchr(s + pos + 1, '"', (size_t)(end - pos - 1));
            if (close == NULL) return rejection(R_UNTERMINATED_QUOTE, 0);
            field.start = pos + 1;
            field.len = (int32_t)(close - s) - pos - 1;
            pos = (int32_t)(close - s) + 1;
        } else {
            const uint8_t *space = memchr(s + pos, ' ', (size_t)(end - pos));
            int32_t stop = space != NULL ? (int32_t)(space - s) : end;
            if (memchr(s + pos, '"', (size_t)(stop - pos)) != NULL) return rejection(R_STRAY_QUOTE, 0);
            field.start = pos;
            field.len = stop - pos;
            pos = stop;
        }
        if (k < max_fields) fields[k] = field;
        k++;
        if (pos == end) {
            *count = k;
            return R_UNDECIDED;
        }
        if (s[pos] != ' ') return rejection(R_NO_SPACE_AFTER_QUOTE, 0);
        pos++;
    }
}

/* "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:[.][0-9]{1,6})?Z" */
static int timestamp_text(const uint8_t *s, int32_t n) {
    static const char shape[] = "dddd-dd-ddTdd:dd:dd";
    if (n != 20 && (n < 22 || n > 27)) return 0;
    for (int i = 0; i < 19; i++)
        if (shape[i] == 'd' ? !is_digit(s[i]) : s[i] != (uint8_t)shape[i]) return 0;
    if (s[n - 1] != 'Z') return 0;
    return n == 20 || (s[19] == '.' && all_digits(s + 20, n - 21));
}

/* Digits before the decimal point, leading zeros left out. */
static int32_t integer_digits(const uint8_t *s, int32_t n) {
    int32_t i = n > 0 && s[0] == '-', end = i;
    while (end < n && s[end] != '.') end++;
    while (i < end && s[i] == '0') i++;
    return end - i;
}

enum { V_KEPT, V_INVALID, V_OUT_OF_RANGE, V_UNSURE };

/* What the reference path makes of a typed field's text (not '-'), as parse._convert_field. */
static int value_verdict(int32_t kind, const uint8_t *s, int32_t n) {
    int64_t integer;
    switch (kind) {
    case K_TIMESTAMP: {
        date_cache_t no_cache = {{0}, 0};
        if (!timestamp_text(s, n)) return V_INVALID;
        if (parse_timestamp(s, n, &no_cache, &integer)) return V_KEPT;
        return V_INVALID; /* an impossible date or time (Python 3.11-3.13 reject hour 24 too; a Python that
                             read it would fail test_rejections_are_counted_as_the_reference_path_rejects) */
    }
    case K_FLOAT64: {
        if (!number_text(s, n)) return V_INVALID;
        int32_t digits = integer_digits(s, n); /* 308 digits stay below DBL_MAX; 310 overflow to infinity */
        double value;
        if (digits != 309) return digits <= 308 ? V_KEPT : V_OUT_OF_RANGE;
        return !read_with_strtod(s, n, &value) ? V_UNSURE : isfinite(value) ? V_KEPT : V_OUT_OF_RANGE;
    }
    case K_INT32:
    case K_INT64:
        if (!integer_text(s, n)) return V_INVALID;
        return parse_int(s, n, kind == K_INT32 ? INT32_LIMIT : INT64_LIMIT, &integer) ? V_KEPT : V_OUT_OF_RANGE;
    default:
        return V_KEPT;
    }
}

static int has_address_form(const uint8_t *s, int32_t n) { /* parse._ADDRESS_RE: "^(.*):([0-9]{1,5})$" */
    int32_t colon = n - 1;
    while (colon >= 0 && s[colon] != ':') colon--;
    return colon >= 0 && n - colon - 1 <= 5 && all_digits(s + colon + 1, n - colon - 1);
}

/*
 * Why the reference path rejects a line (a rejection code), or R_UNDECIDED when it might keep it: the checks of
 * parse.parse_line_fields (UTF-8, blank, carriage return, length, tokenizer, field count, each typed value in
 * field order), then those of parse._problems (required fields, the elb's form, addresses), in their order.
 * line[0, n) is the line without its '\n'.
 */
static int32_t classify_line(const uint8_t *line, int32_t n, const int32_t *kinds, const int32_t *flags,
                             int32_t n_fields, int32_t min_fields, int32_t max_line_bytes) {
    if (utf8_error_at(line, n) >= 0) return rejection(R_INVALID_UTF8, 0);
    int32_t end = n > 0 && line[n - 1] == '\r' ? n - 1 : n;
    if (is_blank(line, end)) return rejection(R_EMPTY, 0);
    if (memchr(line, '\r', (size_t)end) != NULL) return rejection(R_CARRIAGE_RETURN, 0);
    if (n > max_line_bytes) return rejection(R_TOO_LONG, 0);
    span_t fields[MAX_FIELDS];
    int32_t count = 0;
    int32_t error = split_like_reference(line, end, fields, n_fields, &count);
    if (error != R_UNDECIDED) return error;
    if (count < min_fields) return rejection(R_TOO_FEW_FIELDS, 0);
    int32_t present = count < n_fields ? count : n_fields;
    int null[MAX_FIELDS];
    for (int32_t f = 0; f < n_fields; f++) {
        null[f] = f >= present || is_dash(line, fields[f]);
        if (null[f]) continue;
        int verdict = value_verdict(kinds[f], line + fields[f].start, fields[f].len);
        if (verdict == V_UNSURE) return R_UNDECIDED;
        if (verdict != V_KEPT) return rejection(verdict == V_INVALID ? R_INVALID_VALUE : R_OUT_OF_RANGE, f);
    }
    for (int32_t f = 0; f < n_fields; f++)
        if ((flags[f] & F_REQUIRED) && null[f]) return rejection(R_MISSING, f);
    for (int32_t f = 0; f < n_fields; f++)
        if ((flags[f] & F_ELB_FORM) && !null[f] && !has_elb_form(line, fields[f])) return rejection(R_ELB_FORM, f);
    for (int32_t f = 0; f < n_fields; f++)
        if (kinds[f] == K_ADDRESS && !null[f] && !has_address_form(line + fields[f].start, fields[f].len))
            return rejection(R_MALFORMED_ADDRESS, f);
    return R_UNDECIDED;
}

/* -------------------------------------------------------------------------------------------------- the scan */

#define MAX_STRING_COLUMNS 64
#define MAX_VALUE_COLUMNS 64

/* Stores the validity bits of a group of 8 rows (byte index `at`) and starts the next group. */
static void flush_validity(string_column_t *strings, int n_strings, uint8_t *string_bits, uint8_t **bitmaps,
                           int n_values, uint8_t *value_bits, int64_t at) {
    for (int k = 0; k < n_strings; k++) {
        strings[k].validity[at] = string_bits[k];
        string_bits[k] = 0;
    }
    for (int k = 0; k < n_values; k++) {
        bitmaps[k][at] = value_bits[k];
        value_bits[k] = 0;
    }
}

/* Where alb_scan puts the lines that are not rows. */
typedef struct {
    int64_t capacity;       /* in: room in index, bounds and code */
    int64_t rejected_limit; /* in: rejected lines to record; later ones are only counted. -1: record every line,
                               blank ones too (else blank lines are only counted: the quarantine never stores them) */
    int64_t *index;         /* per recorded line: its 0-based index in buf */
    int64_t *bounds;        /* per recorded line: [start, end), end at its '\n' */
    int32_t *code;          /* per recorded line: its rejection code, R_UNDECIDED for the reference path to parse */
    int64_t *unrecorded;    /* R_REASONS * MAX_FIELDS counters, by rejection code, of the lines not recorded */
    int64_t recorded;       /* out: lines recorded */
    int64_t rejected;       /* out: recorded lines that are rejected (not R_UNDECIDED) */
    int64_t lines;          /* out: lines scanned */
    int64_t consumed;       /* out: bytes scanned, whole lines: the caller scans buf[consumed, len) in another call */
} lines_out_t;

/*
 * Scans the lines of buf[0, len) (buf[len-1] == '\n') in one pass, until the rows or the recorded lines fill
 * their capacity (lines_out->consumed says how far it got).
 *
 * Lines with fewer than min_fields fields or more than max_line_bytes bytes are declined (the Python path's
 * bounds, passed in so that they are defined once).
 *
 * kinds/flags: per log field (n_fields of them). For each accepted line (rows are compacted), appends:
 *   to strings[c], for each string column c (STRING: 1, ADDRESS: 1 = ip, REQUEST: 3 = verb, url, proto);
 *   values[v][r] and bitmaps[v] bit r, for each value column v (typed fields, and the port of an ADDRESS):
 *   int32 (INT32, port), int64 (INT64; TIMESTAMP in microseconds) or double (FLOAT64);
 *   row_lines[r]: the line's 0-based index.
 * Declined lines are classified (classify_line); lines_out records those the reference path must parse and the
 * first rejected ones, and counts the others by rejection code.
 * Returns the number of accepted rows (at most max_rows), -1 on invalid arguments.
 */
int64_t alb_scan(const uint8_t *buf, int64_t len, const int32_t *kinds, const int32_t *flags, int32_t n_fields,
                 int32_t min_fields, int32_t max_line_bytes, int64_t max_rows, string_column_t *strings,
                 void **values, uint8_t **bitmaps, int64_t *row_lines, lines_out_t *out) {
    span_t fields[MAX_FIELDS], texts[MAX_STRING_COLUMNS];
    /* Validity: one byte per column for the current line, and the bits of the current group of 8 rows, stored
     * once per group (a read-modify-write of the bitmap per value was a measurable share of the scan). */
    uint8_t valid[MAX_VALUE_COLUMNS], string_bits[MAX_STRING_COLUMNS] = {0}, value_bits[MAX_VALUE_COLUMNS] = {0};
    int64_t rows = 0, lines = 0, recorded = 0, rejected = 0;
    int32_t p = 0;
    const uint8_t *buf_end = buf + len;
    date_cache_t dates = {{0}, 0};
    if (n_fields > MAX_FIELDS || len > INT32_MAX - 16 || len < 1 || buf[len - 1] != '\n') return -1;
    if (max_rows < 1 || out->capacity < 1) return -1;
    int n_strings = 0, n_values = 0;
    for (int f = 0; f < n_fields; f++) {
        n_strings += kinds[f] == K_STRING || kinds[f] == K_ADDRESS ? 1 : kinds[f] == K_REQUEST ? 3 : 0;
        n_values += kinds[f] != K_STRING && kinds[f] != K_REQUEST;
    }
    if (n_strings > MAX_STRING_COLUMNS || n_values > MAX_VALUE_COLUMNS) return -1;
    for (int c = 0; c < n_strings; c++) {
        strings[c].used = 0;
        strings[c].offsets[0] = 0;
    }
    while (p < len && rows < max_rows && recorded < out->capacity) {
        if (buf[p] == '\n' && out->rejected_limit >= 0) { /* a run of empty lines: counted, never recorded */
            int32_t run = p;
            while (run < len && buf[run] == '\n') run++;
            out->unrecorded[rejection(R_EMPTY, 0)] += run - p;
            lines += run - p;
            p = run;
            continue;
        }
        int32_t nl;
        int count = tokenize_line(buf, (int32_t)len, p, &nl, fields, n_fields);
        int ok = count >= min_fields && nl - p <= max_line_bytes;
        int c = 0, v = 0;
        for (int f = 0; ok && f < n_fields; f++) {
            span_t text = f < count ? fields[f] : null_span();
            int null = text.len < 0 || is_dash(buf, text);
            if (null && (flags[f] & F_REQUIRED)) ok = 0;
            if (!null && (flags[f] & F_ELB_FORM) && !has_elb_form(buf, text)) ok = 0;
            const uint8_t *s = buf + text.start;
            switch (kinds[f]) {
            case K_STRING:
                texts[c++] = null ? null_span() : text;
                break;
            case K_REQUEST:
                split_request(buf, null ? null_span() : text, &texts[c], &texts[c + 1], &texts[c + 2]);
                c += 3;
                break;
            case K_ADDRESS: {
                int64_t port = 0;
                span_t ip = null_span();
                if (!null) {
                    int32_t colon = text.start + text.len - 1;
                    while (colon >= text.start && buf[colon] != ':') colon--;
                    int32_t digits = text.start + text.len - colon - 1;
                    ok = ok && colon >= text.start && digits >= 1 && digits <= 5 && buf[colon + 1] != '-';
                    ok = ok && parse_int(buf + colon + 1, digits, INT32_LIMIT, &port);
                    ip.start = text.start;
                    ip.len = colon - text.start;
                }
                texts[c++] = ip;
                ((int32_t *)values[v])[rows] = (int32_t)port;
                valid[v++] = (uint8_t)!null;
                break;
            }
            case K_INT32: {
                int64_t x = 0;
                if (!null) ok = ok && parse_int(s, text.len, INT32_LIMIT, &x);
                ((int32_t *)values[v])[rows] = (int32_t)x;
                valid[v++] = (uint8_t)!null;
                break;
            }
            case K_INT64: {
                int64_t x = 0;
                if (!null) ok = ok && parse_int(s, text.len, INT64_LIMIT, &x);
                ((int64_t *)values[v])[rows] = x;
                valid[v++] = (uint8_t)!null;
                break;
            }
            case K_FLOAT64: {
                double x = 0;
                if (!null) ok = ok && parse_float(s, text.len, &x);
                ((double *)values[v])[rows] = x;
                valid[v++] = (uint8_t)!null;
                break;
            }
            case K_TIMESTAMP: {
                int64_t x = 0;
                if (!null) ok = ok && parse_timestamp(s, text.len, &dates, &x);
                ((int64_t *)values[v])[rows] = x;
                valid[v++] = (uint8_t)!null;
                break;
            }
            default:
                return -1;
            }
        }
        if (ok) { /* the line is accepted: only now do its strings go to the columns */
            int bit = (int)(rows & 7);
            int backslash = memchr(buf + p, '\\', (size_t)(nl - p)) != NULL; /* then \\xHH escapes are possible */
            for (int k = 0; k < n_strings; k++) {
                append_text(&strings[k], buf, buf_end, texts[k], rows, backslash);
                string_bits[k] |= (uint8_t)((texts[k].len >= 0) << bit);
            }
            for (int k = 0; k < n_values; k++) value_bits[k] |= (uint8_t)(valid[k] << bit);
            if (bit == 7) flush_validity(strings, n_strings, string_bits, bitmaps, n_values, value_bits, rows >> 3);
            row_lines[rows] = lines;
            rows++;
        } else {
            int32_t code = classify_line(buf + p, nl - p, kinds, flags, n_fields, min_fields, max_line_bytes);
            int record = code == R_UNDECIDED || out->rejected_limit < 0 ||
                         (code / MAX_FIELDS != R_EMPTY && rejected < out->rejected_limit);
            if (record) {
                out->index[recorded] = lines;
                out->bounds[2 * recorded] = p;
                out->bounds[2 * recorded + 1] = nl;
                out->code[recorded] = code;
                recorded++;
                rejected += code != R_UNDECIDED;
            } else {
                out->unrecorded[code]++;
            }
        }
        lines++;
        p = nl + 1;
    }
    if (rows & 7) flush_validity(strings, n_strings, string_bits, bitmaps, n_values, value_bits, rows >> 3);
    out->recorded = recorded;
    out->rejected = rejected;
    out->lines = lines;
    out->consumed = p;
    return rows;
}
