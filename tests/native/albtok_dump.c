/*
 * albtok_dump LOGFILE [REJECTED_LIMIT]: scans a whole log file with the native tokenizer
 * (src/alblake/_albtok.c), using the field layout production uses (alblake.parse._native_spec over
 * parse._FIELDS), in calls of a few rows and recorded lines each (so that every call resumes where the last
 * stopped), and prints everything alb_scan produced as deterministic text: the scanner path, the layout, each
 * call's counts, every recorded line with its rejection code, the counts of the lines not recorded, and every
 * output value of every row (strings with their exact bytes, numbers, validity). REJECTED_LIMIT is the
 * rejected lines to record (default -1: every line).
 *
 * tests/test_native_cross.py builds it three ways - SSE2 (x86_64), portable SWAR (x86_64 with -U__SSE2__) and
 * NEON (aarch64, run under qemu) - and requires the three dumps to be identical apart from the first line, which
 * names the byte-scanner path the preprocessor selected.
 *
 * ALBTOK_SOURCE may name another copy of _albtok.c (-DALBTOK_SOURCE='"/tmp/copy/_albtok.c"'), e.g. to check
 * that a deliberately broken copy makes the comparison fail. The code under test comes first in the
 * translation unit, so it is compiled exactly as in production.
 */
#ifndef ALBTOK_SOURCE
#define ALBTOK_SOURCE "../../src/alblake/_albtok.c"
#endif
#include ALBTOK_SOURCE

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

/* The byte-scanner path of next_special(), selected by the same conditions as in _albtok.c. */
#if defined(__SSE2__)
#define SCAN_PATH "sse2"
#elif defined(__aarch64__)
#define SCAN_PATH "neon"
#else
#define SCAN_PATH "swar"
#endif

#define MIN_FIELDS 18 /* parse.MIN_FIELDS (schema.MIN_FIELDS) */
#define MAX_LINE_BYTES (1 << 20) /* parse.MAX_LINE_BYTES */
#define MAX_OUTPUTS 3 /* a REQUEST fills three columns */
#define ROWS_PER_CALL 61     /* small, so that calls stop on full rows ... */
#define RECORDED_PER_CALL 29 /* ... and on full recorded lines, and resume */

/* One log field as parse._native_spec describes it to the C code. */
typedef struct {
    const char *name;                 /* parse._FIELDS[i].name */
    int32_t kind;                     /* K_* */
    int32_t flags;                    /* F_* */
    const char *columns[MAX_OUTPUTS]; /* the columns it fills, string columns first (ADDRESS: ip, port) */
    int32_t gather[MAX_OUTPUTS];      /* G_* of each string column */
} field_t;

static const field_t FIELDS[] = {
    {"type", K_STRING, F_REQUIRED, {"type"}, {0}},
    {"time", K_TIMESTAMP, F_REQUIRED, {"time"}, {0}},
    {"elb", K_STRING, F_REQUIRED | F_ELB_FORM, {"elb"}, {0}},
    {"client:port", K_ADDRESS, 0, {"client_ip", "client_port"}, {0}},
    {"target:port", K_ADDRESS, 0, {"target_ip", "target_port"}, {0}},
    {"request_processing_time", K_FLOAT64, 0, {"request_processing_time"}, {0}},
    {"target_processing_time", K_FLOAT64, 0, {"target_processing_time"}, {0}},
    {"response_processing_time", K_FLOAT64, 0, {"response_processing_time"}, {0}},
    {"elb_status_code", K_INT32, 0, {"elb_status_code"}, {0}},
    {"target_status_code", K_INT32, 0, {"target_status_code"}, {0}},
    {"received_bytes", K_INT64, 0, {"received_bytes"}, {0}},
    {"sent_bytes", K_INT64, 0, {"sent_bytes"}, {0}},
    {"request",
     K_REQUEST,
     0,
     {"request_verb", "request_url", "request_proto"},
     {G_DECODE_ESCAPES, G_DECODE_ESCAPES, 0}},
    {"user_agent", K_STRING, 0, {"user_agent"}, {G_DECODE_ESCAPES}},
    {"ssl_cipher", K_STRING, 0, {"ssl_cipher"}, {0}},
    {"ssl_protocol", K_STRING, 0, {"ssl_protocol"}, {0}},
    {"target_group_arn", K_STRING, 0, {"target_group_arn"}, {0}},
    {"trace_id", K_STRING, 0, {"trace_id"}, {0}},
    {"domain_name", K_STRING, 0, {"domain_name"}, {G_DECODE_ESCAPES | G_TRIM_SPACES}},
    {"chosen_cert_arn", K_STRING, 0, {"chosen_cert_arn"}, {0}},
    {"matched_rule_priority", K_INT32, 0, {"matched_rule_priority"}, {0}},
    {"request_creation_time", K_TIMESTAMP, 0, {"request_creation_time"}, {0}},
    {"actions_executed", K_STRING, 0, {"actions_executed"}, {0}},
    {"redirect_url", K_STRING, 0, {"redirect_url"}, {G_DECODE_ESCAPES}},
    {"error_reason", K_STRING, 0, {"lambda_error_reason"}, {G_DECODE_ESCAPES}},
    {"target:port_list", K_STRING, 0, {"target_port_list"}, {0}},
    {"target_status_code_list", K_STRING, 0, {"target_status_code_list"}, {0}},
    {"classification", K_STRING, 0, {"classification"}, {0}},
    {"classification_reason", K_STRING, 0, {"classification_reason"}, {0}},
    {"conn_trace_id", K_STRING, 0, {"conn_trace_id"}, {0}},
    {"transformed_host", K_STRING, 0, {"transformed_host"}, {G_DECODE_ESCAPES}},
    {"transformed_uri", K_STRING, 0, {"transformed_uri"}, {G_DECODE_ESCAPES}},
    {"request_transform_status", K_STRING, 0, {"request_transform_status"}, {0}},
};
#define N_FIELDS ((int32_t)(sizeof FIELDS / sizeof FIELDS[0]))

/* How alb_scan stores the values of a value column. */
typedef enum { VALUE_INT32, VALUE_INT64, VALUE_FLOAT64 } value_type_t;

/* String columns a field fills (STRING: the text, ADDRESS: the ip, REQUEST: verb, url, proto). */
static int string_outputs(int32_t kind) {
    return kind == K_STRING || kind == K_ADDRESS ? 1 : kind == K_REQUEST ? 3 : 0;
}

/* Value columns a field fills (typed fields, and the port of an ADDRESS). */
static int value_outputs(int32_t kind) { return kind == K_STRING || kind == K_REQUEST ? 0 : 1; }

static value_type_t value_type(int32_t kind) {
    switch (kind) {
    case K_FLOAT64:
        return VALUE_FLOAT64;
    case K_INT64:
    case K_TIMESTAMP: /* microseconds since the epoch */
        return VALUE_INT64;
    default: /* K_INT32, and the port of K_ADDRESS */
        return VALUE_INT32;
    }
}

static size_t value_size(value_type_t type) { return type == VALUE_INT32 ? sizeof(int32_t) : 8; }

static const char *value_type_name(value_type_t type) {
    return type == VALUE_INT32 ? "int32" : type == VALUE_INT64 ? "int64" : "float64";
}

static void *allocate(size_t count, size_t size) {
    void *memory = calloc(count ? count : 1, size);
    if (memory == NULL) {
        fprintf(stderr, "albtok_dump: out of memory\n");
        exit(1);
    }
    return memory;
}

/* The whole file; a '\n' is appended when it does not end with one (alb_scan takes complete lines only). */
static uint8_t *read_log(const char *path, int64_t *len) {
    FILE *file = fopen(path, "rb");
    if (file == NULL) {
        perror(path);
        exit(1);
    }
    size_t size = 0, capacity = 1 << 16;
    uint8_t *data = allocate(capacity, 1);
    for (;;) {
        if (capacity - size < 2) { /* always room for the final '\n' */
            capacity *= 2;
            data = realloc(data, capacity);
            if (data == NULL) {
                fprintf(stderr, "albtok_dump: out of memory\n");
                exit(1);
            }
        }
        size_t got = fread(data + size, 1, capacity - size - 1, file);
        if (got == 0) break;
        size += got;
    }
    if (ferror(file)) {
        perror(path);
        exit(1);
    }
    fclose(file);
    if (size == 0 || data[size - 1] != '\n') data[size++] = '\n';
    /* exactly the log's bytes: a sanitizer build then reports any read past its end */
    uint8_t *exact = realloc(data, size);
    *len = (int64_t)size;
    return exact != NULL ? exact : data;
}

/* Bytes between double quotes: printable ASCII as is, everything else (and '"', '\\') as \xHH. */
static void print_bytes(const uint8_t *s, int64_t n) {
    putchar('"');
    for (int64_t i = 0; i < n; i++) {
        uint8_t c = s[i];
        if (c >= 0x20 && c < 0x7F && c != '"' && c != '\\')
            putchar(c);
        else
            printf("\\x%02X", c);
    }
    putchar('"');
}

static int bit(const uint8_t *bitmap, int64_t row) { return (bitmap[row >> 3] >> (row & 7)) & 1; }

/* The buffers alb_scan fills, sized as alblake.native.Scanner does. */
typedef struct {
    int64_t capacity; /* max_rows */
    int n_strings, n_values;
    string_column_t strings[MAX_STRING_COLUMNS];
    value_type_t value_types[MAX_FIELDS];
    void *values[MAX_FIELDS];
    uint8_t *bitmaps[MAX_FIELDS];
    int64_t *row_lines;       /* capacity */
    int64_t recorded[RECORDED_PER_CALL], bounds[2 * RECORDED_PER_CALL];
    int32_t codes[RECORDED_PER_CALL];
    int64_t unrecorded[R_REASONS * MAX_FIELDS];
    lines_out_t lines_out;
} outputs_t;

static void allocate_outputs(outputs_t *out, int64_t len, int64_t capacity) {
    memset(out, 0, sizeof *out);
    out->capacity = capacity;
    for (int32_t f = 0; f < N_FIELDS; f++) {
        const field_t *field = &FIELDS[f];
        for (int k = 0; k < string_outputs(field->kind); k++) {
            string_column_t *column = &out->strings[out->n_strings++];
            column->data = allocate((size_t)len + 16, 1);
            column->offsets = allocate((size_t)capacity + 1, sizeof(int32_t));
            column->validity = allocate(((size_t)capacity + 7) / 8, 1);
            column->flags = field->gather[k];
        }
        if (value_outputs(field->kind)) {
            value_type_t type = value_type(field->kind);
            out->value_types[out->n_values] = type;
            out->values[out->n_values] = allocate((size_t)capacity, value_size(type));
            out->bitmaps[out->n_values] = allocate(((size_t)capacity + 7) / 8, 1);
            out->n_values++;
        }
    }
    out->row_lines = allocate((size_t)capacity, sizeof(int64_t));
    out->lines_out.capacity = RECORDED_PER_CALL;
    out->lines_out.index = out->recorded;
    out->lines_out.bounds = out->bounds;
    out->lines_out.code = out->codes;
    out->lines_out.unrecorded = out->unrecorded;
}

static void print_layout(void) {
    int string_index = 0, value_index = 0;
    printf("min_fields %d\n", MIN_FIELDS);
    printf("max_line_bytes %d\n", MAX_LINE_BYTES);
    for (int32_t f = 0; f < N_FIELDS; f++) {
        const field_t *field = &FIELDS[f];
        printf("field %" PRId32 " %s kind=%" PRId32 " flags=%" PRId32 "\n", f, field->name, field->kind,
               field->flags);
        int strings = string_outputs(field->kind);
        for (int k = 0; k < strings; k++)
            printf("  string %d %s gather=%" PRId32 "\n", string_index++, field->columns[k], field->gather[k]);
        if (value_outputs(field->kind))
            printf("  value %d %s %s\n", value_index++, field->columns[strings],
                   value_type_name(value_type(field->kind)));
    }
}

static void print_string(const outputs_t *out, int c, int64_t row) {
    const string_column_t *column = &out->strings[c];
    int32_t start = column->offsets[row], end = column->offsets[row + 1];
    if (!bit(column->validity, row)) {
        printf("null");
        if (end != start) printf(" (%" PRId32 " bytes)", end - start); /* an Arrow NULL should span nothing */
        return;
    }
    print_bytes(column->data + start, (int64_t)end - start);
}

static void print_value(const outputs_t *out, int v, int64_t row) {
    int valid = bit(out->bitmaps[v], row);
    if (!valid) printf("null (");
    switch (out->value_types[v]) {
    case VALUE_INT32:
        printf("%" PRId32, ((const int32_t *)out->values[v])[row]);
        break;
    case VALUE_INT64:
        printf("%" PRId64, ((const int64_t *)out->values[v])[row]);
        break;
    case VALUE_FLOAT64:
        printf("%.17g", ((const double *)out->values[v])[row]);
        break;
    }
    if (!valid) printf(")");
}

/* Every output of one row, in field order (row: its index in the call; number: in the whole log). */
static void print_row(const outputs_t *out, int64_t row, int64_t number) {
    int c = 0, v = 0;
    printf("row %" PRId64 " line %" PRId64 "\n", number, out->row_lines[row]);
    for (int32_t f = 0; f < N_FIELDS; f++) {
        const field_t *field = &FIELDS[f];
        int strings = string_outputs(field->kind);
        for (int k = 0; k < strings; k++) {
            printf("  %s: ", field->columns[k]);
            print_string(out, c++, row);
            putchar('\n');
        }
        if (value_outputs(field->kind)) {
            printf("  %s: ", field->columns[strings]);
            print_value(out, v++, row);
            putchar('\n');
        }
    }
}

int main(int argc, char **argv) {
    if (argc != 2 && argc != 3) {
        fprintf(stderr, "usage: %s LOGFILE [REJECTED_LIMIT]\n", argv[0]);
        return 2;
    }
    static char stdout_buffer[1 << 16];
    setvbuf(stdout, stdout_buffer, _IOFBF, sizeof stdout_buffer);

    int64_t len;
    uint8_t *buf = read_log(argv[1], &len);
    int32_t kinds[MAX_FIELDS], flags[MAX_FIELDS];
    for (int32_t f = 0; f < N_FIELDS; f++) {
        kinds[f] = FIELDS[f].kind;
        flags[f] = FIELDS[f].flags;
    }
    outputs_t *out = allocate(1, sizeof *out);
    allocate_outputs(out, len, ROWS_PER_CALL);
    int64_t rejected_limit = argc == 3 ? strtoll(argv[2], NULL, 10) : -1;

    printf("path %s\n", SCAN_PATH); /* the only line allowed to differ between builds */
    print_layout();
    printf("bytes %" PRId64 "\n", len);
    printf("rejected_limit %" PRId64 "\n", rejected_limit);
    int64_t offset = 0, lines = 0, rows = 0, recorded = 0;
    for (int call = 0; offset < len; call++) {
        out->lines_out.rejected_limit = rejected_limit;
        int64_t result = alb_scan(buf + offset, len - offset, kinds, flags, N_FIELDS, MIN_FIELDS, MAX_LINE_BYTES,
                                  ROWS_PER_CALL, out->strings, out->values, out->bitmaps, out->row_lines,
                                  &out->lines_out);
        const lines_out_t *got = &out->lines_out;
        printf("call %d at %" PRId64 ": result %" PRId64 " lines %" PRId64 " recorded %" PRId64
               " rejected %" PRId64 " consumed %" PRId64 "\n",
               call, offset, result, got->lines, got->recorded, got->rejected, got->consumed);
        if (result < 0 || got->consumed < 1) {
            fflush(stdout);
            fprintf(stderr, "albtok_dump: alb_scan returned %" PRId64 "\n", result);
            return 1;
        }
        for (int64_t d = 0; d < got->recorded; d++) {
            int64_t start = out->bounds[2 * d], end = out->bounds[2 * d + 1];
            printf("recorded line %" PRId64 " [%" PRId64 ", %" PRId64 ") code %" PRId32 " ",
                   lines + out->recorded[d], offset + start, offset + end, out->codes[d]);
            print_bytes(buf + offset + start, end - start);
            putchar('\n');
        }
        for (int64_t row = 0; row < result; row++) print_row(out, row, rows + row);
        for (int c = 0; c < out->n_strings; c++)
            printf("string column %d: %" PRId64 " bytes, last offset %" PRId32 "\n", c, out->strings[c].used,
                   out->strings[c].offsets[result]);
        if (rejected_limit >= 0) rejected_limit = rejected_limit > got->rejected ? rejected_limit - got->rejected : 0;
        offset += got->consumed;
        lines += got->lines;
        rows += result;
        recorded += got->recorded;
    }
    printf("lines %" PRId64 "\n", lines);
    printf("rows %" PRId64 "\n", rows);
    printf("recorded %" PRId64 "\n", recorded);
    for (int code = 0; code < R_REASONS * MAX_FIELDS; code++)
        if (out->unrecorded[code]) printf("unrecorded code %d: %" PRId64 "\n", code, out->unrecorded[code]);
    printf("end\n");
    return fflush(stdout) == 0 ? 0 : 1;
}
