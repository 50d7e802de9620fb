/* Protobuf wire decoding of ONNX models: a reader over [p, end) that never trusts a length. */
#include "embed/onnx_proto.h"
#include "embed/embed.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- arena ---- */

struct onnx_arena {
    struct chunk *head;
};

struct chunk {
    struct chunk *next;
    size_t used, cap;
    _Alignas(64) unsigned char data[];
};

#define ARENA_CHUNK ((size_t)1 << 20)

onnx_arena *onnx_arena_new(void)
{
    return calloc(1, sizeof(onnx_arena));
}

void onnx_arena_free(onnx_arena *a)
{
    if (!a)
        return;
    struct chunk *c = a->head;
    while (c) {
        struct chunk *next = c->next;
        free(c);
        c = next;
    }
    free(a);
}

void *onnx_arena_alloc(onnx_arena *a, size_t n)
{
    if (n > EMBED_MAX_MODEL_BYTES * 2)
        return NULL;
    n = (n + 63) & ~(size_t)63;
    if (n == 0)
        n = 64;
    struct chunk *c = a->head;
    if (!c || c->cap - c->used < n) {
        size_t cap = n > ARENA_CHUNK / 2 ? n : ARENA_CHUNK;
        struct chunk *nc = aligned_alloc(64, (sizeof(struct chunk) + cap + 63) & ~(size_t)63);
        if (!nc)
            return NULL;
        nc->used = 0;
        nc->cap = cap;
        if (c && cap != ARENA_CHUNK) {
            /* A big one-off block goes behind the current chunk so its free space stays usable. */
            nc->next = c->next;
            c->next = nc;
            nc->used = cap;
            memset(nc->data, 0, n);
            return nc->data;
        }
        nc->next = c;
        a->head = nc;
        c = nc;
    }
    void *p = c->data + c->used;
    c->used += n;
    memset(p, 0, n);
    return p;
}

/* ---- reader ---- */

typedef struct {
    const uint8_t *p, *end;
    onnx_arena *arena;
    char *err;
    size_t errlen;
    int rc;
} rd;

static int fail(rd *r, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(rd *r, int rc, const char *fmt, ...)
{
    if (r->rc == 0) {
        va_list ap;
        va_start(ap, fmt);
        if (r->errlen)
            vsnprintf(r->err, r->errlen, fmt, ap);
        va_end(ap);
        r->rc = rc;
    }
    return rc;
}

/* Carries a nested reader's failure (its message is already in err) up to r. */
static int up(rd *r, const rd *s)
{
    r->rc = s->rc ? s->rc : EMBED_EFORMAT;
    return r->rc;
}

static int varint(rd *r, uint64_t *v)
{
    uint64_t x = 0;
    for (int shift = 0; shift < 70; shift += 7) {
        if (r->p >= r->end)
            return fail(r, EMBED_EFORMAT, "onnx: truncated varint");
        uint8_t b = *r->p++;
        if (shift == 63 && b > 1)
            return fail(r, EMBED_EFORMAT, "onnx: varint overflow");
        x |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = x;
            return 0;
        }
    }
    return fail(r, EMBED_EFORMAT, "onnx: varint too long");
}

/* Reads a tag; 1 = got one, 0 = end of message, <0 = error. */
static int tag(rd *r, uint32_t *field, int *wt)
{
    if (r->p >= r->end)
        return 0;
    uint64_t t;
    if (varint(r, &t))
        return r->rc;
    *field = (uint32_t)(t >> 3);
    *wt = (int)(t & 7);
    if (*field == 0 || t >> 32)
        return fail(r, EMBED_EFORMAT, "onnx: bad field tag");
    return 1;
}

/* A length-delimited field: sub-reader over its bytes. */
static int sub(rd *r, rd *s)
{
    uint64_t n;
    if (varint(r, &n))
        return r->rc;
    if (n > (uint64_t)(r->end - r->p))
        return fail(r, EMBED_EFORMAT, "onnx: length %llu past the end of its message", (unsigned long long)n);
    *s = *r;
    s->end = r->p + n;
    r->p += n;
    return 0;
}

static int skip(rd *r, int wt)
{
    uint64_t v;
    switch (wt) {
    case 0:
        return varint(r, &v);
    case 1:
        if (r->end - r->p < 8)
            return fail(r, EMBED_EFORMAT, "onnx: truncated fixed64");
        r->p += 8;
        return 0;
    case 2: {
        rd s;
        return sub(r, &s);
    }
    case 5:
        if (r->end - r->p < 4)
            return fail(r, EMBED_EFORMAT, "onnx: truncated fixed32");
        r->p += 4;
        return 0;
    default:
        return fail(r, EMBED_EFORMAT, "onnx: unsupported wire type %d", wt);
    }
}

static int want(rd *r, int wt, int expect, const char *what)
{
    if (wt != expect)
        return fail(r, EMBED_EFORMAT, "onnx: %s has wire type %d, expected %d", what, wt, expect);
    return 0;
}

static int str(rd *r, int wt, const char **out)
{
    rd s;
    if (want(r, wt, 2, "string") || sub(r, &s))
        return r->rc;
    size_t n = (size_t)(s.end - s.p);
    char *c = onnx_arena_alloc(r->arena, n + 1);
    if (!c)
        return fail(r, EMBED_ENOMEM, "onnx: out of memory");
    memcpy(c, s.p, n);
    c[n] = 0;
    *out = c;
    return 0;
}

static int i64(rd *r, int wt, int64_t *out)
{
    uint64_t v;
    if (want(r, wt, 0, "integer") || varint(r, &v))
        return r->rc;
    *out = (int64_t)v;
    return 0;
}

static int f32(rd *r, int wt, float *out)
{
    if (want(r, wt, 5, "float"))
        return r->rc;
    if (r->end - r->p < 4)
        return fail(r, EMBED_EFORMAT, "onnx: truncated float");
    memcpy(out, r->p, 4);
    r->p += 4;
    return 0;
}

/* Growable array of fixed-size items in the arena, capped at ONNX_MAX_ITEMS. */
typedef struct {
    void *items;
    size_t n, cap;
} vec;

static void *vec_push(rd *r, vec *v, size_t size)
{
    if (v->n >= ONNX_MAX_ITEMS) {
        fail(r, EMBED_ETOOLARGE, "onnx: too large (more than %d items in one list)", ONNX_MAX_ITEMS);
        return NULL;
    }
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 8;
        void *n = onnx_arena_alloc(r->arena, cap * size);
        if (!n) {
            fail(r, EMBED_ENOMEM, "onnx: out of memory");
            return NULL;
        }
        if (v->n)
            memcpy(n, v->items, v->n * size);
        v->items = n;
        v->cap = cap;
    }
    return (char *)v->items + v->n++ * size;
}

/* Repeated scalar field, packed (wire type 2) or not. kind: 0 varint int64, 5 fixed32 float. */
static int repeated(rd *r, int wt, int kind, vec *v)
{
    size_t size = kind == 5 ? sizeof(float) : sizeof(int64_t);
    if (wt == 2) {
        rd s;
        if (sub(r, &s))
            return r->rc;
        while (s.p < s.end) {
            void *slot = vec_push(r, v, size);
            if (!slot)
                return r->rc;
            if (kind == 5 ? f32(&s, 5, slot) : i64(&s, 0, slot))
                return up(r, &s);
        }
        return 0;
    }
    void *slot = vec_push(r, v, size);
    if (!slot)
        return r->rc;
    return kind == 5 ? f32(r, wt, slot) : i64(r, wt, slot);
}

static int elem_size(int dtype)
{
    switch (dtype) {
    case ONNX_FLOAT:
    case ONNX_INT32:
    case ONNX_UINT32:
        return 4;
    case ONNX_UINT8:
    case ONNX_INT8:
    case ONNX_BOOL:
        return 1;
    case ONNX_UINT16:
    case ONNX_INT16:
        return 2;
    case ONNX_INT64:
    case ONNX_UINT64:
        return 8;
    default:
        return 0;
    }
}

static int64_t raw_int(const uint8_t *p, int dtype)
{
    switch (dtype) {
    case ONNX_UINT8:
    case ONNX_BOOL:
        return *p;
    case ONNX_INT8:
        return (int8_t)*p;
    case ONNX_UINT16: {
        uint16_t v;
        memcpy(&v, p, 2);
        return v;
    }
    case ONNX_INT16: {
        int16_t v;
        memcpy(&v, p, 2);
        return v;
    }
    case ONNX_INT32: {
        int32_t v;
        memcpy(&v, p, 4);
        return v;
    }
    case ONNX_UINT32: {
        uint32_t v;
        memcpy(&v, p, 4);
        return v;
    }
    default: {
        int64_t v;
        memcpy(&v, p, 8);
        return v;
    }
    }
}

static int tensor(rd *r, onnx_tensor *t)
{
    vec dims = {0}, fdata = {0}, idata = {0};
    const uint8_t *raw = NULL;
    size_t raw_len = 0;
    int64_t dtype = 0, location = 0;
    int has_external = 0, ok;
    uint32_t f;
    int wt;
    t->name = "";
    while ((ok = tag(r, &f, &wt)) > 0) {
        switch (f) {
        case 1:
            if (repeated(r, wt, 0, &dims))
                return r->rc;
            break;
        case 2:
            if (i64(r, wt, &dtype))
                return r->rc;
            break;
        case 4:
            if (repeated(r, wt, 5, &fdata))
                return r->rc;
            break;
        case 5:
        case 7:
        case 11:
            /* int32_data, int64_data and uint64_data are all varints on the wire. */
            if (repeated(r, wt, 0, &idata))
                return r->rc;
            break;
        case 8:
            if (str(r, wt, &t->name))
                return r->rc;
            break;
        case 9: {
            rd s;
            if (want(r, wt, 2, "raw_data") || sub(r, &s))
                return r->rc;
            raw = s.p;
            raw_len = (size_t)(s.end - s.p);
            break;
        }
        case 13:
            has_external = 1;
            if (skip(r, wt))
                return r->rc;
            break;
        case 14:
            if (i64(r, wt, &location))
                return r->rc;
            break;
        case 6:
        case 10:
            return fail(r, EMBED_EUNSUPPORTED, "onnx: tensor '%s': string/double data is not supported",
                        t->name);
        default:
            if (skip(r, wt))
                return r->rc;
        }
    }
    if (ok < 0)
        return r->rc;
    if (has_external || location == 1)
        return fail(r, EMBED_EUNSUPPORTED,
                    "onnx: tensor '%s' uses external data, which is not supported (save the model "
                    "with all tensors inside the .onnx file)",
                    t->name);
    if (dims.n > ONNX_MAX_RANK)
        return fail(r, EMBED_EUNSUPPORTED, "onnx: tensor '%s' has rank %zu (max %d)", t->name, dims.n,
                    ONNX_MAX_RANK);
    t->rank = (int)dims.n;
    size_t count = 1;
    for (size_t i = 0; i < dims.n; i++) {
        int64_t d = ((int64_t *)dims.items)[i];
        if (d < 0 || (d > 0 && count > EMBED_MAX_TENSOR_BYTES / 8 / (size_t)d))
            return fail(r, d < 0 ? EMBED_EFORMAT : EMBED_ETOOLARGE,
                        "onnx: tensor '%s': bad or too large dims", t->name);
        t->dims[i] = d;
        count *= (size_t)d;
    }
    t->count = count;
    t->src_dtype = (int)dtype;
    int es = elem_size((int)dtype);
    if (es == 0)
        return fail(r, EMBED_EUNSUPPORTED, "onnx: tensor '%s' has data type %d, which is not supported",
                    t->name, (int)dtype);
    t->dtype = dtype == ONNX_FLOAT ? ONNX_FLOAT : ONNX_INT64;
    size_t out_es = t->dtype == ONNX_FLOAT ? 4 : 8;
    t->data = onnx_arena_alloc(r->arena, count * out_es);
    if (!t->data)
        return fail(r, EMBED_ENOMEM, "onnx: out of memory for tensor '%s'", t->name);
    if (raw) {
        if (raw_len != count * (size_t)es)
            return fail(r, EMBED_EFORMAT, "onnx: tensor '%s': raw_data has %zu bytes, shape needs %zu",
                        t->name, raw_len, count * (size_t)es);
        if (t->dtype == ONNX_FLOAT)
            memcpy(t->data, raw, raw_len);
        else
            for (size_t i = 0; i < count; i++)
                ((int64_t *)t->data)[i] = raw_int(raw + i * (size_t)es, (int)dtype);
        return 0;
    }
    if (t->dtype == ONNX_FLOAT) {
        if (fdata.n != count)
            return fail(r, EMBED_EFORMAT, "onnx: tensor '%s': float_data has %zu values, shape needs %zu",
                        t->name, fdata.n, count);
        if (count)
            memcpy(t->data, fdata.items, count * 4);
        return 0;
    }
    if (idata.n != count)
        return fail(r, EMBED_EFORMAT, "onnx: tensor '%s': integer data has %zu values, shape needs %zu",
                    t->name, idata.n, count);
    for (size_t i = 0; i < count; i++) {
        int64_t v = ((int64_t *)idata.items)[i];
        /* int32_data holds narrower types as varints of their int32 value. */
        if (dtype != ONNX_INT64 && dtype != ONNX_UINT64)
            v = (int32_t)v;
        ((int64_t *)t->data)[i] = v;
    }
    return 0;
}

static int attribute(rd *r, onnx_attr *a)
{
    vec floats = {0}, ints = {0};
    uint32_t f;
    int wt, ok;
    int64_t type = 0;
    a->name = "";
    while ((ok = tag(r, &f, &wt)) > 0) {
        switch (f) {
        case 1:
            if (str(r, wt, &a->name))
                return r->rc;
            break;
        case 2:
            if (f32(r, wt, &a->f))
                return r->rc;
            break;
        case 3:
            if (i64(r, wt, &a->i))
                return r->rc;
            break;
        case 4:
            if (str(r, wt, &a->s))
                return r->rc;
            break;
        case 5: {
            rd s;
            onnx_tensor *t = onnx_arena_alloc(r->arena, sizeof(*t));
            if (!t)
                return fail(r, EMBED_ENOMEM, "onnx: out of memory");
            if (want(r, wt, 2, "attribute tensor") || sub(r, &s))
                return r->rc;
            if (tensor(&s, t))
                return up(r, &s);
            a->t = t;
            break;
        }
        case 7:
            if (repeated(r, wt, 5, &floats))
                return r->rc;
            break;
        case 8:
            if (repeated(r, wt, 0, &ints))
                return r->rc;
            break;
        case 20:
            if (i64(r, wt, &type))
                return r->rc;
            break;
        case 21:
            return fail(r, EMBED_EUNSUPPORTED, "onnx: attribute references (functions) are not supported");
        default:
            if (skip(r, wt))
                return r->rc;
        }
    }
    if (ok < 0)
        return r->rc;
    a->type = (int)type;
    a->floats = floats.items;
    a->ints = ints.items;
    a->n = type == ONNX_ATTR_FLOATS ? floats.n : ints.n;
    return 0;
}

static int node(rd *r, onnx_node *n)
{
    vec in = {0}, out = {0}, attrs = {0};
    uint32_t f;
    int wt, ok;
    n->name = "";
    n->op_type = "";
    n->domain = "";
    while ((ok = tag(r, &f, &wt)) > 0) {
        switch (f) {
        case 1:
        case 2: {
            const char **slot = vec_push(r, f == 1 ? &in : &out, sizeof(char *));
            if (!slot || str(r, wt, slot))
                return r->rc;
            break;
        }
        case 3:
            if (str(r, wt, &n->name))
                return r->rc;
            break;
        case 4:
            if (str(r, wt, &n->op_type))
                return r->rc;
            break;
        case 7:
            if (str(r, wt, &n->domain))
                return r->rc;
            break;
        case 5: {
            rd s;
            onnx_attr *a = vec_push(r, &attrs, sizeof(onnx_attr));
            if (!a || want(r, wt, 2, "attribute") || sub(r, &s))
                return r->rc;
            if (attribute(&s, a))
                return up(r, &s);
            break;
        }
        default:
            if (skip(r, wt))
                return r->rc;
        }
    }
    if (ok < 0)
        return r->rc;
    n->inputs = in.items;
    n->n_inputs = (int)in.n;
    n->outputs = out.items;
    n->n_outputs = (int)out.n;
    n->attrs = attrs.items;
    n->n_attrs = (int)attrs.n;
    return 0;
}

static int shape(rd *r, onnx_value_info *v)
{
    uint32_t f;
    int wt, ok;
    v->rank = 0;
    while ((ok = tag(r, &f, &wt)) > 0) {
        if (f != 1) {
            if (skip(r, wt))
                return r->rc;
            continue;
        }
        rd d;
        if (want(r, wt, 2, "dim") || sub(r, &d))
            return r->rc;
        if (v->rank >= ONNX_MAX_RANK)
            return fail(r, EMBED_EUNSUPPORTED, "onnx: value '%s' has rank > %d", v->name, ONNX_MAX_RANK);
        int64_t value = -1;
        uint32_t df;
        int dwt, dok;
        while ((dok = tag(&d, &df, &dwt)) > 0) {
            if (df == 1 ? i64(&d, dwt, &value) : skip(&d, dwt))
                return up(r, &d);
        }
        if (dok < 0)
            return up(r, &d);
        v->dims[v->rank++] = value < 0 ? -1 : value;
    }
    return ok < 0 ? r->rc : 0;
}

static int value_info(rd *r, onnx_value_info *v)
{
    uint32_t f;
    int wt, ok;
    v->name = "";
    v->rank = -1;
    while ((ok = tag(r, &f, &wt)) > 0) {
        if (f == 1) {
            if (str(r, wt, &v->name))
                return r->rc;
        } else if (f == 2) {
            rd ty;
            if (want(r, wt, 2, "type") || sub(r, &ty))
                return r->rc;
            uint32_t tf;
            int twt, tok;
            while ((tok = tag(&ty, &tf, &twt)) > 0) {
                if (tf != 1) {
                    if (skip(&ty, twt))
                        return up(r, &ty);
                    continue;
                }
                rd tt;
                if (want(&ty, twt, 2, "tensor_type") || sub(&ty, &tt))
                    return up(r, &ty);
                uint32_t sf;
                int swt, sok;
                while ((sok = tag(&tt, &sf, &swt)) > 0) {
                    int rc = 0;
                    if (sf == 1) {
                        int64_t et;
                        rc = i64(&tt, swt, &et);
                        v->elem_type = (int)et;
                    } else if (sf == 2) {
                        rd sh;
                        rc = want(&tt, swt, 2, "shape") || sub(&tt, &sh);
                        if (!rc) {
                            rc = shape(&sh, v);
                            if (rc)
                                return up(r, &sh);
                        }
                    } else {
                        rc = skip(&tt, swt);
                    }
                    if (rc)
                        return up(r, &tt);
                }
                if (sok < 0)
                    return up(r, &tt);
            }
            if (tok < 0)
                return up(r, &ty);
        } else if (skip(r, wt)) {
            return r->rc;
        }
    }
    return ok < 0 ? r->rc : 0;
}

static int graph(rd *r, onnx_model *m)
{
    vec nodes = {0}, inits = {0}, inputs = {0}, outputs = {0};
    uint32_t f;
    int wt, ok;
    while ((ok = tag(r, &f, &wt)) > 0) {
        rd s;
        switch (f) {
        case 1: {
            onnx_node *n = vec_push(r, &nodes, sizeof(onnx_node));
            if (!n || want(r, wt, 2, "node") || sub(r, &s))
                return r->rc;
            if (node(&s, n))
                return up(r, &s);
            break;
        }
        case 5: {
            onnx_tensor *t = vec_push(r, &inits, sizeof(onnx_tensor));
            if (!t || want(r, wt, 2, "initializer") || sub(r, &s))
                return r->rc;
            if (tensor(&s, t))
                return up(r, &s);
            break;
        }
        case 11:
        case 12: {
            onnx_value_info *v = vec_push(r, f == 11 ? &inputs : &outputs, sizeof(onnx_value_info));
            if (!v || want(r, wt, 2, "value_info") || sub(r, &s))
                return r->rc;
            if (value_info(&s, v))
                return up(r, &s);
            break;
        }
        case 15:
            return fail(r, EMBED_EUNSUPPORTED, "onnx: sparse initializers are not supported");
        default:
            if (skip(r, wt))
                return r->rc;
        }
    }
    if (ok < 0)
        return r->rc;
    m->nodes = nodes.items;
    m->n_nodes = (int)nodes.n;
    m->inits = inits.items;
    m->n_inits = (int)inits.n;
    m->inputs = inputs.items;
    m->n_inputs = (int)inputs.n;
    m->outputs = outputs.items;
    m->n_outputs = (int)outputs.n;
    return 0;
}

static int model(rd *r, onnx_model *m)
{
    vec keys = {0}, values = {0};
    uint32_t f;
    int wt, ok, have_graph = 0, have_opset = 0;
    while ((ok = tag(r, &f, &wt)) > 0) {
        rd s;
        switch (f) {
        case 1:
            if (i64(r, wt, &m->ir_version))
                return r->rc;
            break;
        case 7:
            if (have_graph)
                return fail(r, EMBED_EFORMAT, "onnx: more than one graph");
            if (want(r, wt, 2, "graph") || sub(r, &s))
                return r->rc;
            if (graph(&s, m))
                return up(r, &s);
            have_graph = 1;
            break;
        case 8: {
            const char *domain = "";
            int64_t version = 0;
            uint32_t of;
            int owt, ook;
            if (want(r, wt, 2, "opset_import") || sub(r, &s))
                return r->rc;
            while ((ook = tag(&s, &of, &owt)) > 0) {
                int rc = of == 1 ? str(&s, owt, &domain) : of == 2 ? i64(&s, owt, &version) : skip(&s, owt);
                if (rc)
                    return up(r, &s);
            }
            if (ook < 0)
                return up(r, &s);
            if (domain[0] == 0 || strcmp(domain, "ai.onnx") == 0) {
                m->opset = version;
                have_opset = 1;
            }
            break;
        }
        case 14: {
            const char *k = "", *v = "";
            uint32_t kf;
            int kwt, kok;
            if (want(r, wt, 2, "metadata_props") || sub(r, &s))
                return r->rc;
            while ((kok = tag(&s, &kf, &kwt)) > 0) {
                int rc = kf == 1 ? str(&s, kwt, &k) : kf == 2 ? str(&s, kwt, &v) : skip(&s, kwt);
                if (rc)
                    return up(r, &s);
            }
            if (kok < 0)
                return up(r, &s);
            const char **ks = vec_push(r, &keys, sizeof(char *));
            const char **vs = ks ? vec_push(r, &values, sizeof(char *)) : NULL;
            if (!vs)
                return r->rc;
            *ks = k;
            *vs = v;
            break;
        }
        default:
            if (skip(r, wt))
                return r->rc;
        }
    }
    if (ok < 0)
        return r->rc;
    if (!have_graph)
        return fail(r, EMBED_EFORMAT, "onnx: no graph in the model (not an ONNX ModelProto?)");
    if (!have_opset)
        return fail(r, EMBED_EFORMAT, "onnx: no opset_import for the default domain");
    m->meta_keys = keys.items;
    m->meta_values = values.items;
    m->n_meta = (int)keys.n;
    return 0;
}

onnx_model *onnx_model_parse(const uint8_t *buf, size_t len, char *err, size_t errlen, int *rcp)
{
    onnx_arena *a = onnx_arena_new();
    onnx_model *m = NULL;
    *rcp = EMBED_ENOMEM;
    if (!a || !(m = onnx_arena_alloc(a, sizeof(*m)))) {
        snprintf(err, errlen, "onnx: out of memory");
        goto fail;
    }
    m->arena = a;
    rd r = {buf, buf + len, a, err, errlen, 0};
    if (len > EMBED_MAX_MODEL_BYTES) {
        *rcp = EMBED_ETOOLARGE;
        snprintf(err, errlen, "onnx: model too large (%zu bytes)", len);
        goto fail;
    }
    if (model(&r, m)) {
        *rcp = r.rc;
        goto fail;
    }
    *rcp = 0;
    return m;
fail:
    onnx_arena_free(a);
    return NULL;
}

void onnx_model_free(onnx_model *m)
{
    if (m)
        onnx_arena_free(m->arena);
}

int onnx_tensor_parse(onnx_arena *arena, const uint8_t *buf, size_t len, onnx_tensor *t, char *err,
                      size_t errlen)
{
    rd r = {buf, buf + len, arena, err, errlen, 0};
    memset(t, 0, sizeof(*t));
    return tensor(&r, t);
}

const onnx_attr *onnx_node_attr(const onnx_node *n, const char *name)
{
    for (int i = 0; i < n->n_attrs; i++)
        if (strcmp(n->attrs[i].name, name) == 0)
            return &n->attrs[i];
    return NULL;
}
