/* A tiny ONNX protobuf writer for tests: one-node (or few-node) models with float initializers,
 * written straight to wire format so tests need no Python. Header-only; buffers grow with
 * realloc and a failure aborts the test. */
#ifndef EMBED_TEST_ONNX_BUILD_H
#define EMBED_TEST_ONNX_BUILD_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    uint8_t *p;
    size_t n, cap;
} ob_buf;

static void ob_put(ob_buf *b, const void *d, size_t n)
{
    if (n == 0)
        return;
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 256;
        while (cap < b->n + n)
            cap *= 2;
        b->p = realloc(b->p, cap);
        if (!b->p)
            abort();
        b->cap = cap;
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
}

static void ob_varint(ob_buf *b, uint64_t v)
{
    uint8_t tmp[10];
    int k = 0;
    do {
        tmp[k] = v & 0x7f;
        v >>= 7;
        if (v)
            tmp[k] |= 0x80;
        k++;
    } while (v);
    ob_put(b, tmp, (size_t)k);
}

static void ob_tag(ob_buf *b, int field, int wt)
{
    ob_varint(b, ((uint64_t)field << 3) | (uint64_t)wt);
}

static void ob_int(ob_buf *b, int field, int64_t v)
{
    ob_tag(b, field, 0);
    ob_varint(b, (uint64_t)v);
}

static void ob_bytes(ob_buf *b, int field, const void *d, size_t n)
{
    ob_tag(b, field, 2);
    ob_varint(b, n);
    ob_put(b, d, n);
}

static void ob_str(ob_buf *b, int field, const char *s)
{
    ob_bytes(b, field, s, strlen(s));
}

static void ob_msg(ob_buf *b, int field, ob_buf *m)
{
    ob_bytes(b, field, m->p, m->n);
    free(m->p);
    memset(m, 0, sizeof(*m));
}

/* A graph under construction. */
typedef struct {
    ob_buf g;
} ob_graph;

/* TensorProto with float raw_data (dtype 1) or int64 raw_data (dtype 7). */
static void ob_tensor(ob_buf *t, const char *name, int dtype, const int64_t *dims, int rank, const void *data)
{
    size_t count = 1;
    for (int i = 0; i < rank; i++) {
        ob_int(t, 1, dims[i]);
        count *= (size_t)dims[i];
    }
    ob_int(t, 2, dtype);
    ob_str(t, 8, name);
    ob_bytes(t, 9, data, count * (dtype == 7 ? 8 : 4));
}

static void ob_init(ob_graph *gr, const char *name, int dtype, const int64_t *dims, int rank,
                    const void *data)
{
    ob_buf t = {0};
    ob_tensor(&t, name, dtype, dims, rank, data);
    ob_msg(&gr->g, 5, &t);
}

/* ValueInfoProto for a float tensor; dims < 0 become a symbolic "N". field 11 input, 12 output. */
static void ob_value(ob_graph *gr, int field, const char *name, const int64_t *dims, int rank)
{
    ob_buf shape = {0}, tt = {0}, ty = {0}, vi = {0};
    for (int i = 0; i < rank; i++) {
        ob_buf d = {0};
        if (dims[i] < 0)
            ob_str(&d, 2, "N");
        else
            ob_int(&d, 1, dims[i]);
        ob_msg(&shape, 1, &d);
    }
    ob_int(&tt, 1, 1);
    ob_msg(&tt, 2, &shape);
    ob_msg(&ty, 1, &tt);
    ob_str(&vi, 1, name);
    ob_msg(&vi, 2, &ty);
    ob_msg(&gr->g, field, &vi);
}

/* Attributes: built into a node buffer. */
static void ob_attr_int(ob_buf *node, const char *name, int64_t v)
{
    ob_buf a = {0};
    ob_str(&a, 1, name);
    ob_int(&a, 3, v);
    ob_int(&a, 20, 2);
    ob_msg(node, 5, &a);
}

static void ob_attr_float(ob_buf *node, const char *name, float v)
{
    ob_buf a = {0};
    ob_str(&a, 1, name);
    ob_tag(&a, 2, 5);
    ob_put(&a, &v, 4);
    ob_int(&a, 20, 1);
    ob_msg(node, 5, &a);
}

static void ob_attr_ints(ob_buf *node, const char *name, const int64_t *v, int n)
{
    ob_buf a = {0}, packed = {0};
    ob_str(&a, 1, name);
    for (int i = 0; i < n; i++)
        ob_varint(&packed, (uint64_t)v[i]);
    ob_bytes(&a, 8, packed.p ? packed.p : (uint8_t *)"", packed.n);
    free(packed.p);
    ob_int(&a, 20, 7);
    ob_msg(node, 5, &a);
}

static void ob_attr_str(ob_buf *node, const char *name, const char *s)
{
    ob_buf a = {0};
    ob_str(&a, 1, name);
    ob_str(&a, 4, s);
    ob_int(&a, 20, 3);
    ob_msg(node, 5, &a);
}

/* Starts a node; add attributes to the returned buffer, then ob_node_end(). */
static ob_buf ob_node(const char *op, const char *const *ins, int n_in, const char *out)
{
    ob_buf n = {0};
    for (int i = 0; i < n_in; i++)
        ob_str(&n, 1, ins[i]);
    ob_str(&n, 2, out);
    ob_str(&n, 3, out);
    ob_str(&n, 4, op);
    return n;
}

static void ob_node_end(ob_graph *gr, ob_buf *node)
{
    ob_msg(&gr->g, 1, node);
}

/* Wraps the graph into a ModelProto (IR 7, the given opset); returns the bytes (malloc'd). */
static uint8_t *ob_model(ob_graph *gr, int opset, size_t *len)
{
    ob_buf m = {0}, os = {0};
    ob_int(&m, 1, 7);
    ob_str(&gr->g, 2, "test");
    ob_msg(&m, 7, &gr->g);
    ob_str(&os, 1, "");
    ob_int(&os, 2, opset);
    ob_msg(&m, 8, &os);
    *len = m.n;
    return m.p;
}

#endif
