/* A minimal vsaopt port in C: the rng family (Philox4x32, per-element words, uniforms) and the pack family
 * (2-bit and base-3 trit packing), behind the conform protocol of spec/conform.md.
 *
 * Build: cc -std=c99 -O2 -o port port.c     Run: vsaopt conform -- ./port
 * Requests are read one line at a time; each is answered with one line, in order.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- a small JSON reader (objects, arrays, strings without escapes beyond \" and \\, integers, literals) ---- */

enum { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ };

typedef struct J {
    int type, boolean, is_int, negative, overflow;
    uint64_t u; /* magnitude of an integer */
    char *str;
    int n;
    struct J **items;
    char **keys;
} J;

static const char *p;
static int parse_failed;

static void skip(void) { while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') p++; }

static J *node(int type) {
    J *j = calloc(1, sizeof(J));
    j->type = type;
    return j;
}

static J *value(void);

static char *string(void) {
    if (*p != '"') { parse_failed = 1; return NULL; }
    const char *start = ++p;
    size_t len = 0;
    char *out = malloc(strlen(start) + 1);
    while (*p && *p != '"') {
        if (*p == '\\' && p[1]) p++;
        out[len++] = *p++;
    }
    if (*p != '"') { parse_failed = 1; free(out); return NULL; }
    p++;
    out[len] = 0;
    (void)start;
    return out;
}

static J *number(void) {
    J *j = node(J_NUM);
    j->is_int = 1;
    if (*p == '-') { j->negative = 1; p++; }
    if (*p < '0' || *p > '9') parse_failed = 1;
    while (*p >= '0' && *p <= '9') {
        uint64_t d = (uint64_t)(*p - '0');
        if (j->u > (UINT64_MAX - d) / 10) j->overflow = 1;
        j->u = j->u * 10 + d;
        p++;
    }
    if (*p == '.' || *p == 'e' || *p == 'E') { /* a float: kept only as "not an integer" */
        j->is_int = 0;
        p++;
        while ((*p >= '0' && *p <= '9') || *p == '+' || *p == '-' || *p == 'e' || *p == 'E') p++;
    }
    return j;
}

static J *value(void) {
    skip();
    if (*p == '{' || *p == '[') {
        int obj = *p == '{';
        J *j = node(obj ? J_OBJ : J_ARR);
        p++;
        skip();
        char close = obj ? '}' : ']';
        while (*p && *p != close && !parse_failed) {
            j->items = realloc(j->items, sizeof(J *) * (j->n + 1));
            j->keys = realloc(j->keys, sizeof(char *) * (j->n + 1));
            j->keys[j->n] = NULL;
            if (obj) {
                skip();
                j->keys[j->n] = string();
                skip();
                if (*p++ != ':') parse_failed = 1;
            }
            j->items[j->n++] = value();
            skip();
            if (*p == ',') p++, skip();
        }
        if (*p != close) parse_failed = 1; else p++;
        return j;
    }
    if (*p == '"') { J *j = node(J_STR); j->str = string(); return j; }
    if (!strncmp(p, "true", 4)) { p += 4; J *j = node(J_BOOL); j->boolean = 1; return j; }
    if (!strncmp(p, "false", 5)) { p += 5; return node(J_BOOL); }
    if (!strncmp(p, "null", 4)) { p += 4; return node(J_NULL); }
    if (*p == '-' || (*p >= '0' && *p <= '9')) return number();
    parse_failed = 1;
    return node(J_NULL);
}

static void release(J *j) {
    if (!j) return;
    for (int i = 0; i < j->n; i++) { release(j->items[i]); free(j->keys[i]); }
    free(j->items); free(j->keys); free(j->str); free(j);
}

static J *get(J *obj, const char *key) {
    if (!obj || obj->type != J_OBJ) return NULL;
    for (int i = 0; i < obj->n; i++) if (obj->keys[i] && !strcmp(obj->keys[i], key)) return obj->items[i];
    return NULL;
}

/* ---- arrays in the vector encoding: {"dtype", "shape", "hex"} ---- */

typedef struct { char dtype[16]; int ndim; long shape[32]; long size; unsigned char *bytes; long nbytes; } Array;

static int hexval(char c) { return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1; }

static int read_array(J *j, Array *a) {
    J *dt = get(j, "dtype"), *sh = get(j, "shape"), *hx = get(j, "hex");
    if (!dt || dt->type != J_STR || !sh || sh->type != J_ARR || sh->n > 32 || !hx || hx->type != J_STR) return 0;
    snprintf(a->dtype, sizeof a->dtype, "%s", dt->str);
    a->ndim = sh->n;
    a->size = 1;
    for (int i = 0; i < sh->n; i++) { a->shape[i] = (long)sh->items[i]->u; a->size *= a->shape[i]; }
    a->nbytes = (long)strlen(hx->str) / 2;
    a->bytes = malloc(a->nbytes + 1);
    for (long i = 0; i < a->nbytes; i++) a->bytes[i] = (unsigned char)(hexval(hx->str[2 * i]) * 16 + hexval(hx->str[2 * i + 1]));
    return 1;
}

static void write_array(const char *key, const char *dtype, int ndim, const long *shape, const unsigned char *bytes, long n) {
    printf("\"%s\":{\"dtype\":\"%s\",\"shape\":[", key, dtype);
    for (int i = 0; i < ndim; i++) printf(i ? ",%ld" : "%ld", shape[i]);
    printf("],\"hex\":\"");
    for (long i = 0; i < n; i++) printf("%02x", bytes[i]);
    printf("\"}");
}

static uint32_t u32_at(const Array *a, long i) {
    const unsigned char *b = a->bytes + 4 * i;
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

/* Element i of an integer array as a signed 64-bit value; *ok = 0 when the dtype is not an integer dtype. */
static int64_t int_at(const Array *a, long i, int *ok) {
    static const char *names[] = {"int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64"};
    for (int d = 0; d < 8; d++) {
        if (strcmp(a->dtype, names[d])) continue;
        int width = 1 << (d / 2), is_signed = d % 2 == 0;
        uint64_t v = 0;
        for (int b = 0; b < width; b++) v |= (uint64_t)a->bytes[i * width + b] << (8 * b);
        if (is_signed && width < 8 && (v >> (8 * width - 1)) & 1) v |= ~0ull << (8 * width);
        *ok = 1;
        return is_signed || v <= INT64_MAX ? (int64_t)v : INT64_MAX; /* a huge unsigned value is no trit either */
    }
    *ok = 0;
    return 0;
}

static void put_u32(unsigned char *b, uint32_t v) { b[0] = v; b[1] = v >> 8; b[2] = v >> 16; b[3] = v >> 24; }

/* ---- the spec: Philox4x32-R (SPEC.md §2) ---- */

#define M0 0xD2511F53u
#define M1 0xCD9E8D57u
#define W0 0x9E3779B9u
#define W1 0xBB67AE85u

static void philox(uint32_t c[4], uint32_t k0, uint32_t k1, long rounds) {
    for (long r = 0; r < rounds; r++) {
        if (r > 0) { k0 += W0; k1 += W1; }
        uint64_t p0 = (uint64_t)M0 * c[0], p1 = (uint64_t)M1 * c[2];
        uint32_t n0 = (uint32_t)(p1 >> 32) ^ c[1] ^ k0, n1 = (uint32_t)p1, n2 = (uint32_t)(p0 >> 32) ^ c[3] ^ k1, n3 = (uint32_t)p0;
        c[0] = n0; c[1] = n1; c[2] = n2; c[3] = n3;
    }
}

static uint32_t element_word(uint64_t i, uint64_t seed, uint32_t stream, uint32_t step, uint32_t tensor) {
    uint32_t c[4] = {(uint32_t)(i / 4), tensor, step, stream};
    philox(c, (uint32_t)seed, (uint32_t)(seed >> 32), 10);
    return c[i % 4];
}

/* ---- argument checks: the spec's error classes by name ---- */

static const char *error; /* the error class of the current request, or NULL */

static int is_integer(J *j) { return j && j->type == J_NUM && j->is_int; }

/* An integer argument in [lo, hi] (hi at most 2^64 - 1; lo 0 or 1): DTypeError for a non-integer, ConfigError out of range. */
static uint64_t int_arg(J *inputs, const char *key, uint64_t lo, uint64_t hi) {
    J *j = get(inputs, key);
    if (error) return 0;
    if (!is_integer(j)) { error = "DTypeError"; return 0; }
    if (j->overflow || (j->negative && j->u) || j->u < lo || j->u > hi) { error = "ConfigError"; return 0; }
    return j->u;
}

/* ---- the ops ---- */

static void op_philox(J *in) {
    Array c = {0}, k = {0};
    long rounds = (long)int_arg(in, "rounds", 1, 65536);
    if (error) return;
    if (!read_array(get(in, "counter"), &c) || !read_array(get(in, "key"), &k)) { error = "ProtocolError"; return; }
    if (strcmp(c.dtype, "uint32") || strcmp(k.dtype, "uint32")) error = "DTypeError";
    else if (c.ndim < 1 || c.shape[c.ndim - 1] != 4 || k.ndim < 1 || k.shape[k.ndim - 1] != 2) error = "ShapeError";
    int nb = (c.ndim > k.ndim ? c.ndim : k.ndim) - 1;
    long out_shape[33], cstr[32], kstr[32], count = 1;
    for (int d = nb - 1, cs = 4, ks = 2; d >= 0 && !error; d--) { /* numpy broadcasting of the batch shapes */
        int cd = d - (nb - (c.ndim - 1)), kd = d - (nb - (k.ndim - 1));
        long cn = cd >= 0 ? c.shape[cd] : 1, kn = kd >= 0 ? k.shape[kd] : 1;
        if (cn != kn && cn != 1 && kn != 1) { error = "ShapeError"; break; }
        out_shape[d] = cn == 1 ? kn : cn;
        cstr[d] = cn == 1 ? 0 : cs;
        kstr[d] = kn == 1 ? 0 : ks;
        cs *= (int)cn; ks *= (int)kn;
        count *= out_shape[d];
    }
    if (!error) {
        out_shape[nb] = 4;
        unsigned char *out = malloc(16 * count + 1);
        for (long b = 0; b < count; b++) {
            long rest = b, ci = 0, ki = 0;
            for (int d = nb - 1; d >= 0; d--) { long i = rest % out_shape[d]; rest /= out_shape[d]; ci += i * cstr[d]; ki += i * kstr[d]; }
            uint32_t w[4] = {u32_at(&c, ci), u32_at(&c, ci + 1), u32_at(&c, ci + 2), u32_at(&c, ci + 3)};
            philox(w, u32_at(&k, ki), u32_at(&k, ki + 1), rounds);
            for (int i = 0; i < 4; i++) put_u32(out + 16 * b + 4 * i, w[i]);
        }
        write_array("out", "uint32", nb + 1, out_shape, out, 16 * count);
        free(out);
    }
    free(c.bytes); free(k.bytes);
}

static void op_draw(J *in, int uniform) {
    uint64_t n = int_arg(in, "n", 0, 1ull << 34), seed = int_arg(in, "seed", 0, UINT64_MAX);
    uint32_t stream = (uint32_t)int_arg(in, "stream", 0, UINT32_MAX), step = (uint32_t)int_arg(in, "step", 0, UINT32_MAX);
    uint32_t tensor = (uint32_t)int_arg(in, "tensor_index", 0, UINT32_MAX);
    if (error) return;
    unsigned char *out = malloc(4 * n + 1);
    for (uint64_t i = 0; i < n; i++) {
        uint32_t w = element_word(i, seed, stream, step, tensor);
        if (uniform) { /* top 24 bits times 2^-24, exact in float32 (SPEC.md §2.3) */
            float u = (float)(w >> 8) * (1.0f / 16777216.0f);
            memcpy(&w, &u, 4);
        }
        put_u32(out + 4 * i, w);
    }
    long shape[1] = {(long)n};
    write_array(uniform ? "u" : "bits", uniform ? "float32" : "uint32", 1, shape, out, 4 * (long)n);
    free(out);
}

static int per_byte(J *in) { /* trits per byte of the encoding, 0 when it is unknown */
    J *e = get(in, "encoding");
    if (!e || e->type != J_STR) return 0;
    return !strcmp(e->str, "2bit") ? 4 : !strcmp(e->str, "base3") ? 5 : 0;
}

static void op_pack(J *in) {
    Array t = {0};
    int per = per_byte(in);
    if (!read_array(get(in, "trits"), &t)) { error = "ProtocolError"; return; }
    int ok = 1;
    int_at(&t, 0, &ok);
    if (!per) error = "EncodingError";
    else if (!ok) error = "DTypeError"; /* any integer dtype holds trits; floats and flags do not */
    for (long i = 0; i < t.size && !error; i++) {
        int64_t v = int_at(&t, i, &ok);
        if (v < -1 || v > 1) error = "ConfigError";
    }
    if (!error) {
        long nbytes = (t.size + per - 1) / per;
        unsigned char *out = calloc(nbytes + 1, 1);
        for (long i = 0; i < t.size; i++) {
            int64_t v = int_at(&t, i, &ok);
            int code = v < 0 ? 2 : (int)v;
            out[i / per] += per == 4 ? code << (2 * (i % per)) : code * (i % per == 0 ? 1 : i % per == 1 ? 3 : i % per == 2 ? 9 : i % per == 3 ? 27 : 81);
        }
        long shape[1] = {nbytes};
        write_array("packed", "uint8", 1, shape, out, nbytes);
        free(out);
    }
    free(t.bytes);
}

static void op_unpack(J *in) {
    Array a = {0};
    int per = per_byte(in);
    if (!read_array(get(in, "packed"), &a)) { error = "ProtocolError"; return; }
    if (!per) error = "EncodingError"; /* the encoding is checked first, then the bytes' dtype, then n */
    if (!error && strcmp(a.dtype, "uint8")) error = "DTypeError";
    long n = (long)int_arg(in, "n", 0, 1ull << 40);
    if (!error && (a.ndim != 1 || a.size != (n + per - 1) / per)) error = "ShapeError";
    signed char *out = malloc(a.size * per + 1);
    for (long j = 0; j < a.size && !error; j++) {
        int byte = a.bytes[j];
        if (per == 5 && byte > 242) { error = "EncodingError"; break; }
        for (int k = 0; k < per; k++) {
            int code = per == 4 ? (byte >> (2 * k)) & 3 : byte % 3;
            if (per == 5) byte /= 3;
            if (code == 3 || (j * per + k >= n && code != 0)) { error = "EncodingError"; break; }
            out[j * per + k] = (signed char)(code == 2 ? -1 : code);
        }
    }
    if (!error) {
        long shape[1] = {n};
        write_array("trits", "int8", 1, shape, (unsigned char *)out, n);
    }
    free(out);
    free(a.bytes);
}

/* ---- the protocol loop: one request line in, one answer line out ---- */

static const char *OPS[] = {"rng.philox4x32", "rng.random_bits", "rng.uniform", "pack.pack", "pack.unpack"};

static void answer(J *req) {
    J *id = get(req, "id"), *fam = get(req, "family"), *op = get(req, "op"), *in = get(req, "inputs");
    printf("{\"id\":");
    if (is_integer(id)) printf("%llu", (unsigned long long)id->u); else printf("null");
    if (op && op->type == J_STR && !strcmp(op->str, "ops") && !fam) {
        printf(",\"ops\":[");
        for (size_t i = 0; i < sizeof OPS / sizeof *OPS; i++) printf(i ? ",\"%s\"" : "\"%s\"", OPS[i]);
        printf("]}\n");
        return;
    }
    char name[128] = "";
    if (fam && fam->type == J_STR && op && op->type == J_STR) snprintf(name, sizeof name, "%s.%s", fam->str, op->str);
    error = NULL;
    printf(",\"outputs\":{");
    fflush(stdout);
    /* the outputs are written as they are computed; on an error the line is rewritten below */
    if (!in || in->type != J_OBJ) error = "ProtocolError";
    else if (!strcmp(name, "rng.philox4x32")) op_philox(in);
    else if (!strcmp(name, "rng.random_bits")) op_draw(in, 0);
    else if (!strcmp(name, "rng.uniform")) op_draw(in, 1);
    else if (!strcmp(name, "pack.pack")) op_pack(in);
    else if (!strcmp(name, "pack.unpack")) op_unpack(in);
    else error = "ProtocolError";
    printf("}}\n");
}

int main(void) {
    char *buffer = NULL;
    size_t cap = 0;
    ssize_t len;
    while ((len = getline(&buffer, &cap, stdin)) > 0) {
        p = buffer;
        parse_failed = 0;
        J *req = value();
        /* an answer is built in memory first, so that an error replaces the partial outputs */
        char *text = NULL;
        size_t size = 0;
        FILE *mem = open_memstream(&text, &size);
        FILE *real = stdout;
        stdout = mem;
        if (parse_failed || req->type != J_OBJ) {
            error = "ProtocolError";
            printf("{\"id\":null}\n");
        } else {
            answer(req);
        }
        fflush(mem);
        stdout = real;
        fclose(mem);
        J *id = parse_failed ? NULL : get(req, "id");
        if (error) {
            printf("{\"id\":");
            if (is_integer(id)) printf("%llu", (unsigned long long)id->u); else printf("null");
            printf(",\"error\":\"%s\"}\n", error);
        } else {
            fputs(text, stdout);
        }
        fflush(stdout);
        free(text);
        release(req);
        error = NULL;
    }
    free(buffer);
    return 0;
}
