/* The engine's graph: ONNX nodes turned into typed ops with parsed attributes (graph.c), the
 * reference kernels that define each op's meaning (ops_ref.c), and the execution plan built
 * for concrete input shapes (plan.c, exec.c).
 *
 * Invariants: nodes are in topological order (ONNX requires it; graph.c checks that every
 * input is defined before use). A tensor id indexes eg_graph.tensors; -1 marks an omitted
 * optional input. A tensor with data != NULL is a constant (initializer, Constant node, or
 * a BatchNormalization folded into its Conv). After embed_model_load() the graph is never
 * written again.
 */
#ifndef EMBED_GRAPH_H
#define EMBED_GRAPH_H

#include "embed/embed.h"
#include "embed/onnx_proto.h"

#include <pthread.h>
#include <stdint.h>

#define EG_MAX_RANK ONNX_MAX_RANK

enum eg_op {
    OP_NONE, /* removed (folded) node */
    OP_CONV,
    OP_BATCHNORM,
    OP_RELU,
    OP_CLIP,
    OP_ADD,
    OP_SUB,
    OP_MUL,
    OP_DIV,
    OP_MAXPOOL,
    OP_AVGPOOL,
    OP_GLOBALAVGPOOL,
    OP_GLOBALMAXPOOL,
    OP_FLATTEN,
    OP_RESHAPE,
    OP_GEMM,
    OP_MATMUL,
    OP_CONCAT,
    OP_IDENTITY, /* Identity and Dropout */
    OP_SOFTMAX,
    OP_CONSTANT,
    OP_SHAPE,
    OP_GATHER,
    OP_UNSQUEEZE,
    OP_SQUEEZE,
    OP_CAST,
};

enum { PAD_NOTSET, PAD_VALID, PAD_SAME_UPPER, PAD_SAME_LOWER };

typedef struct eg_attrs {
    /* Conv, MaxPool, AveragePool (2-D spatial) */
    int group;
    int kernel[2], stride[2], dilation[2];
    int pads[4]; /* h_begin, w_begin, h_end, w_end */
    int auto_pad;
    int ceil_mode, count_include_pad;
    /* Flatten, Concat, Softmax, Gather */
    int axis;
    /* Gemm */
    float alpha, beta;
    int trans_a, trans_b;
    /* Clip (attributes before opset 11), BatchNormalization */
    float clip_min, clip_max, epsilon;
    /* Squeeze/Unsqueeze before opset 13 */
    int n_axes;
    int64_t axes[EG_MAX_RANK];
    /* Softmax before opset 13 coerces the input to 2-D at axis */
    int legacy_softmax;
    /* Shape (opset 15) */
    int64_t start, end;
    int has_end;
    /* Cast */
    int to;
    /* Reshape */
    int allowzero;
    /* Constant */
    int value_tensor; /* tensor id holding the value */
} eg_attrs;

typedef struct eg_node {
    int op;
    const char *name; /* node name, or its first output's name when the node has none */
    const char *op_type;
    int n_in, n_out;
    int *in;  /* tensor ids, -1 = omitted */
    int *out; /* tensor ids */
    eg_attrs a;
} eg_node;

typedef struct eg_tensor {
    const char *name;
    int dtype; /* ONNX_FLOAT or ONNX_INT64 */
    int rank;  /* -1 unknown (run-time tensors before planning) */
    int64_t dims[EG_MAX_RANK];
    void *data; /* constant payload or NULL */
    size_t count;
    int producer;    /* node index, -1 for inputs and constants */
    int n_consumers; /* nodes reading it */
    int folded;      /* a Conv output consumed only by a folded BatchNormalization */
} eg_tensor;

typedef struct eg_graph {
    onnx_model *onnx;  /* owns the strings and initializer payloads */
    onnx_arena *arena; /* folded weights, node arrays */
    int n_tensors, n_nodes;
    eg_tensor *tensors;
    eg_node *nodes;
    int n_inputs; /* run-time inputs (graph inputs that are not initializers) */
    int *inputs;
    int n_outputs;
    int *outputs;
    int64_t opset;
} eg_graph;

/* Build the typed graph from a parsed model; validates ops and attributes and folds
 * BatchNormalization into Conv. Takes ownership of `onnx` (also on failure). NULL on error,
 * with the EMBED_* code in *rc. */
eg_graph *eg_graph_new(onnx_model *onnx, char *err, size_t errlen, int *rc);
void eg_graph_free(eg_graph *g);
int eg_graph_find(const eg_graph *g, const char *name);

/* ---- shapes and reference kernels (ops_ref.c) ---- */

/* A concrete tensor view: plain row-major data. */
typedef struct eg_view {
    int dtype;
    int rank;
    int64_t dims[EG_MAX_RANK];
    void *data;
} eg_view;

size_t eg_count(int rank, const int64_t *dims);

/* Infer the output shapes of node n from its input views (whose data may be NULL for
 * run-time tensors; constant integer inputs that decide shapes must have data). Writes
 * outs[i].rank/dims/dtype. 0 or EMBED_EUNSUPPORTED/EFORMAT with a message naming the node. */
int eg_infer(const eg_graph *g, const eg_node *n, const eg_view *ins, eg_view *outs, char *err,
             size_t errlen);

/* Run node n with the plain C kernels: every input has data, outputs have shape and data. */
int eg_ref_run(const eg_node *n, const eg_view *ins, eg_view *outs, char *err, size_t errlen);

/* Output spatial size and resolved pads for Conv/pooling given input H, W (auto_pad applied). */
void eg_spatial(const eg_attrs *a, int ih, int iw, int *oh, int *ow, int pads[4]);

#endif
