/* The parts of an ONNX ModelProto we read, as decoded by onnx_wire.c.
 *
 * Everything a parse returns lives in one arena (onnx_model.arena) and is freed by
 * onnx_model_free(). Tensor payloads are converted once to a native array: FLOAT stays float,
 * every integer type and BOOL becomes int64 (dtype ONNX_INT64, the file's type kept in
 * src_dtype). Strings are NUL-terminated copies.
 *
 * Protobuf field numbers (onnx.proto3, IR version 8) the decoder understands:
 *   ModelProto      1 ir_version, 7 graph, 8 opset_import{1 domain, 2 version},
 *                   14 metadata_props{1 key, 2 value}
 *   GraphProto      1 node, 5 initializer, 11 input, 12 output, 15 sparse_initializer (rejected)
 *   NodeProto       1 input, 2 output, 3 name, 4 op_type, 5 attribute, 7 domain
 *   AttributeProto  1 name, 2 f, 3 i, 4 s, 5 t, 6 g (rejected), 7 floats, 8 ints, 20 type,
 *                   21 ref_attr_name (rejected)
 *   TensorProto     1 dims, 2 data_type, 4 float_data, 5 int32_data, 7 int64_data, 8 name,
 *                   9 raw_data, 13 external_data / 14 data_location (rejected), 10/11 double/uint64
 *   ValueInfoProto  1 name, 2 type{1 tensor_type{1 elem_type, 2 shape{1 dim{1 value, 2 param}}}}
 * Unknown fields are skipped by wire type, so newer files load.
 */
#ifndef EMBED_ONNX_PROTO_H
#define EMBED_ONNX_PROTO_H

#include <stddef.h>
#include <stdint.h>

#define ONNX_MAX_RANK 8
#define ONNX_MAX_ITEMS 100000 /* nodes, tensors, inputs per node, attribute values */

enum {
    ONNX_UNDEFINED = 0,
    ONNX_FLOAT = 1,
    ONNX_UINT8 = 2,
    ONNX_INT8 = 3,
    ONNX_UINT16 = 4,
    ONNX_INT16 = 5,
    ONNX_INT32 = 6,
    ONNX_INT64 = 7,
    ONNX_STRING = 8,
    ONNX_BOOL = 9,
    ONNX_FLOAT16 = 10,
    ONNX_DOUBLE = 11,
    ONNX_UINT32 = 12,
    ONNX_UINT64 = 13,
};

enum {
    ONNX_ATTR_FLOAT = 1,
    ONNX_ATTR_INT = 2,
    ONNX_ATTR_STRING = 3,
    ONNX_ATTR_TENSOR = 4,
    ONNX_ATTR_GRAPH = 5,
    ONNX_ATTR_FLOATS = 6,
    ONNX_ATTR_INTS = 7,
    ONNX_ATTR_STRINGS = 8,
};

typedef struct onnx_arena onnx_arena;

typedef struct onnx_tensor {
    const char *name;
    int dtype;     /* ONNX_FLOAT or ONNX_INT64 after decoding */
    int src_dtype; /* the file's data_type */
    int rank;
    int64_t dims[ONNX_MAX_RANK];
    size_t count; /* elements: product of dims */
    void *data;   /* float[count] or int64_t[count], 64-byte aligned */
} onnx_tensor;

typedef struct onnx_attr {
    const char *name;
    int type;             /* ONNX_ATTR_* */
    float f;              /* FLOAT */
    int64_t i;            /* INT */
    const char *s;        /* STRING (NUL-terminated copy) */
    size_t n;             /* FLOATS/INTS count */
    const float *floats;  /* FLOATS */
    const int64_t *ints;  /* INTS */
    const onnx_tensor *t; /* TENSOR */
} onnx_attr;

typedef struct onnx_node {
    const char *name; /* may be "" */
    const char *op_type;
    const char *domain;
    int n_inputs, n_outputs, n_attrs;
    const char **inputs; /* "" marks an omitted optional input */
    const char **outputs;
    onnx_attr *attrs;
} onnx_node;

typedef struct onnx_value_info {
    const char *name;
    int elem_type;
    int rank;                    /* -1 when the shape is unknown */
    int64_t dims[ONNX_MAX_RANK]; /* -1 for a symbolic or missing dimension */
} onnx_value_info;

typedef struct onnx_model {
    onnx_arena *arena;
    int64_t ir_version;
    int64_t opset; /* default-domain opset, 0 when absent */
    int n_nodes, n_inits, n_inputs, n_outputs, n_meta;
    onnx_node *nodes;
    onnx_tensor *inits;
    onnx_value_info *inputs;
    onnx_value_info *outputs;
    const char **meta_keys;
    const char **meta_values;
} onnx_model;

/* Decode a ModelProto. NULL on error, with the EMBED_* code in *rc and a message in err. The
 * buffer is not referenced after return. */
onnx_model *onnx_model_parse(const uint8_t *buf, size_t len, char *err, size_t errlen, int *rc);
void onnx_model_free(onnx_model *m);

/* Decode a lone TensorProto (the conformance tests' input_N.pb / output_N.pb files) into a
 * tensor whose storage is allocated in `arena`. 0 or a negative EMBED_* code. */
int onnx_tensor_parse(onnx_arena *arena, const uint8_t *buf, size_t len, onnx_tensor *t, char *err,
                      size_t errlen);

onnx_arena *onnx_arena_new(void);
void onnx_arena_free(onnx_arena *a);
/* 64-byte aligned, zeroed; NULL when out of memory. */
void *onnx_arena_alloc(onnx_arena *a, size_t n);

const onnx_attr *onnx_node_attr(const onnx_node *n, const char *name);

#endif
