/* embed: image to vector. A small ONNX inference engine for image CNNs (this part), and the
 * image pipeline in front of it (its own section below documents its design).
 *
 * What the engine does
 *   embed_model_load() reads a standard .onnx file with a hand-written protobuf wire decoder
 *   (onnx_wire.c; the fields it reads are tabled in onnx_proto.h), checks the opset, folds
 *   BatchNormalization into the preceding Conv and keeps the graph immutable from then on. The
 *   first run for a given output tensor compiles an execution plan for one sample (plan.c;
 *   larger batches run sample by sample, see Threading): shapes are inferred with the
 *   concrete batch size, every node whose inputs are all constant
 *   is evaluated once (this folds the Shape/Gather/Unsqueeze/Concat chains exporters emit
 *   before Flatten/Reshape), only the nodes the requested tensor needs are kept, Conv+Relu/Clip
 *   and Conv+Add(+Relu) are fused, and every step gets a oneDNN primitive (blocked layouts,
 *   weights reordered once) or a plain C kernel (ops_ref.c). Tensors share buffers by liveness
 *   (memory plan), so a run allocates nothing once its plan and its context's arena exist.
 *
 * Supported ops (default domain, opset 1..18): Conv, BatchNormalization, Relu, Clip, Add, Sub,
 *   Mul, Div, MaxPool, AveragePool, GlobalAveragePool, GlobalMaxPool, Flatten, Reshape (shape
 *   constant after folding), Gemm, MatMul, Concat, Dropout, Softmax, Identity, and the shape
 *   plumbing Constant, Shape, Gather, Unsqueeze, Squeeze, Cast (folded to constants when their
 *   inputs are constant). Anything else, or an attribute we do not implement, fails
 *   embed_model_load() naming the op and the node.
 *   Run-time tensors are float32; integer tensors exist only as constants. Tensors with
 *   external data are rejected.
 *
 * Outputs
 *   Any named tensor of the graph can be asked for, not only graph outputs (embed_model_run's
 *   output_name). The one exception: a Conv output consumed only by a BatchNormalization is
 *   folded away at load; ask for the BatchNormalization output instead.
 *   embed_model_default_output() names the image embedding: the graph output "embedding" when
 *   there is one (the shared MobileNet), else the input of the final Gemm/MatMul (the pooled
 *   feature of torchvision ResNets: 512-d for ResNet-18/34, 2048-d for ResNet-50). Vectors are
 *   returned raw; embed_l2_normalize() normalises one for cosine search.
 *
 * Threading and ownership
 *   An embed_model is immutable after load except for its plan cache and context pool, which
 *   a mutex guards; any number of threads may call embed_model_run() on one model at the same
 *   time. Weights are read-only and shared by every thread; each compiled plan holds its own
 *   copy reordered into the blocked layout oneDNN chose for it. There are at most two plans
 *   per output, one for batch 1 on options.threads threads and one single-threaded for larger
 *   batches (reference mode plans each batch size), at most 64 in all. Each run uses an
 *   embed_ctx (a per-thread workspace: activation arena, oneDNN scratchpad and memory
 *   objects); embed_model_run() borrows one from the model's pool, or callers keep their own
 *   with embed_ctx_new(). After the first run for a given output a context allocates nothing.
 *   options.threads (0 = every core) is how many cores one run uses: the samples of a batch
 *   of two or more go one at a time through the single-threaded plan, dealt out to the
 *   caller and the context's worker threads as each becomes free (no synchronisation inside
 *   the network, activations of one sample stay in cache: MobileNet measured 7.3 ms CPU per
 *   image this way against 8.4 ms as one batch of 8); a batch of one uses OpenMP threads
 *   inside every layer. oneDNN runs on GNU
 *   OpenMP, whose threads spin at every layer barrier by default: on machines shared with
 *   other work set OMP_WAIT_POLICY=passive in the environment before the program starts
 *   (measured: MobileNet batch 1 on 2 threads under load went from 113 to 24 ms median).
 *   The caller owns every buffer it passes; strings returned by the model live as long as the
 *   model. embed_model_free() frees everything, contexts from embed_ctx_new() excepted (free
 *   them first, with embed_ctx_free()).
 *
 * Diagnostics: EMBED_PROFILE=1 in the environment times every step; each context prints a
 *   per-op table to stderr when freed. build/embed-prof MODEL.onnx times a model from the
 *   command line (see tools/embed/embed_prof.c).
 *
 * Limits (hostile files): model file <= EMBED_MAX_MODEL_BYTES, <= 100000 nodes and tensors,
 *   rank <= 8, every length and offset in the protobuf checked against its enclosing message,
 *   every tensor's data size checked against its shape, every run-time tensor
 *   <= EMBED_MAX_TENSOR_BYTES. Violations are load errors, never crashes.
 */
#ifndef EMBED_EMBED_H
#define EMBED_EMBED_H

#include <stddef.h>
#include <stdint.h>

/* Error codes: every int-returning function returns 0 or one of these. */
enum {
    EMBED_OK = 0,
    EMBED_EINVAL = -1,       /* bad argument (unknown tensor name, batch out of range) */
    EMBED_EIO = -2,          /* the file could not be read */
    EMBED_EFORMAT = -3,      /* malformed protobuf or ONNX structure */
    EMBED_EUNSUPPORTED = -4, /* op, attribute, data type or opset we do not implement */
    EMBED_ENOMEM = -5,
    EMBED_ETOOLARGE = -6, /* a cap was exceeded (file, tensor, output buffer) */
    EMBED_EBACKEND = -7,  /* oneDNN refused a primitive */
};

#define EMBED_MAX_MODEL_BYTES ((size_t)1 << 31)
#define EMBED_MAX_TENSOR_BYTES ((size_t)1 << 31)
#define EMBED_MAX_BATCH 256

typedef struct embed_model_options {
    int threads;     /* cores one run uses (batch split, or OpenMP inside layers at batch 1); 0 = all */
    int reference;   /* 1 = run only the plain C kernels (slow; for tests and cross-checks) */
    int direct_only; /* 1 = no Winograd 3x3 convolutions (their weights take up to 4x the memory) */
} embed_model_options;

typedef struct embed_model embed_model;
typedef struct embed_ctx embed_ctx;

/* Load a model from a file or from memory (the buffer is copied; the caller keeps it).
 * opt may be NULL (defaults: every core, fast kernels). NULL on error, with err filled. */
embed_model *embed_model_load(const char *path, const embed_model_options *opt, char *err, size_t errlen);
embed_model *embed_model_load_buffer(const void *data, size_t len, const embed_model_options *opt, char *err,
                                     size_t errlen);
void embed_model_free(embed_model *m);

/* The image input: its name and per-sample shape (NCHW without N). 0, or EMBED_EUNSUPPORTED if
 * the graph's first input is not a rank-4 float tensor with known C, H, W. */
const char *embed_model_input_name(const embed_model *m);
int embed_model_input_shape(const embed_model *m, int *c, int *h, int *w);

/* Per-sample element count of tensor `name` (its shape without the batch dimension), or a
 * negative error code (unknown name, folded away). Compiles the plan for batch 1 if needed. */
long embed_model_output_dim(embed_model *m, const char *name, char *err, size_t errlen);

/* Name of the image-embedding tensor (see Outputs above), or NULL when the graph has no
 * "embedding" output and no final Gemm/MatMul. */
const char *embed_model_default_output(const embed_model *m);

/* The graph's outputs in file order: embed_model_output_count() of them; a name lives as long
 * as the model, NULL when i is out of range. */
int embed_model_output_count(const embed_model *m);
const char *embed_model_output_name(const embed_model *m, int i);

/* ONNX op type ("Softmax", "Gemm", ...) of the node that produces tensor `name`, or NULL when
 * no node does (unknown name, graph input, initializer). Lets a caller tell logits from
 * probabilities. The string lives as long as the model. */
const char *embed_model_tensor_op(const embed_model *m, const char *name);

/* Value of a metadata_props key (e.g. "preprocessing"), or NULL. */
const char *embed_model_metadata(const embed_model *m, const char *key);

/* Run `batch` samples (input: batch x C x H x W floats, NCHW) and copy tensor `output_name`
 * (NULL = embed_model_default_output()) into out, batch x output_dim floats; out_cap is the
 * capacity of out in floats (EMBED_ETOOLARGE if too small). Thread-safe. */
int embed_model_run(embed_model *m, const float *input, int batch, const char *output_name, float *out,
                    size_t out_cap, char *err, size_t errlen);

/* A per-thread workspace for callers that keep one per worker thread. Not thread-safe itself:
 * one thread at a time. Free before the model. */
embed_ctx *embed_ctx_new(embed_model *m, char *err, size_t errlen);
void embed_ctx_free(embed_ctx *c);
int embed_ctx_run(embed_ctx *c, const float *input, int batch, const char *output_name, float *out,
                  size_t out_cap, char *err, size_t errlen);

/* Scale v (n floats) to unit L2 norm; a zero vector stays zero. */
void embed_l2_normalize(float *v, size_t n);

/* ---- Image pipeline ---- */
/* Turns an encoded photo into the network's input tensor, the way torchvision and the
 * TF-slim evaluation do it:
 *
 *   bytes --sniff magic--> JPEG | PNG | WebP | GIF (first frame) | TIFF (first page); any
 *         other format is refused (no SVG, PDF, ImageMagick loaders reachable from input)
 *   header only --------> width*height checked against max_pixels BEFORE any pixel is
 *                         decoded (decompression bombs); bytes checked against max_file_bytes
 *   decode (sequential, fail_on=error: truncated or corrupt data is an error, not grey)
 *   embedded ICC profile -> sRGB (else a plain colourspace conversion: grey, CMYK, 16-bit)
 *   alpha flattened onto white, 8-bit RGB
 *   resize: shorter side to resize_short (256) with an antialiasing triangle (bilinear)
 *           kernel whose support widens with the shrink factor, like PIL/torchvision
 *           antialias=True; the longer side becomes floor(long * 256 / short) as
 *           torchvision's Resize(256) computes it. Orientation is taken into account when
 *           choosing the target sizes, but the pixels are rotated after the resize (cheaper,
 *           and rotation by 90 degrees needs random access)
 *   EXIF orientation applied (vips_autorot)
 *   centre crop crop x crop (224); the offset is round((side - crop) / 2) like torchvision
 *   value = (pixel / 255 - mean[c]) / std[c], written NCHW (R plane, G plane, B plane)
 *
 * Normalisation comes from the model: embed_image_opts_parse_preprocessing() reads the
 * free-text ONNX metadata_props "preprocessing" value (it understands "pixel/127.5 - 1",
 * "imagenet", and explicit "mean=a,b,c; std=a,b,c"); callers fall back to their flags.
 *
 * Threading: embed_image_global_init() starts libvips once per process (call it from main
 * before starting threads; later calls are no-ops). After that every function here may be
 * called from any number of threads at once; they share no mutable state. libvips' operation
 * cache is disabled at init because inputs are never repeated and cached buffer loads would
 * pin memory, and its warnings (printed to stderr per failed tile) are dropped because every
 * failure is reported through err.
 *
 * Ownership: input buffers are borrowed for the duration of the call. Output tensors are
 * caller-allocated (3 * crop * crop floats). embed_image_rgb_*() return a malloc'd buffer the
 * caller releases with free().
 *
 * Errors: functions return 0 or one of the negative EMBED_IMAGE_E* codes and write a message
 * naming the file (when there is one) and the reason into err.
 */

enum embed_image_error {
    EMBED_IMAGE_EINVAL = -1,    /* bad argument or option */
    EMBED_IMAGE_EIO = -2,       /* file cannot be opened or read */
    EMBED_IMAGE_ETOOLARGE = -3, /* file or pixel count over its cap */
    EMBED_IMAGE_EFORMAT = -4,   /* not one of the supported formats */
    EMBED_IMAGE_ECORRUPT = -5,  /* decoding failed: truncated or corrupt data */
    EMBED_IMAGE_ENOMEM = -6,    /* allocation failed */
    EMBED_IMAGE_EINIT = -7,     /* libvips not started or failed to start */
};

/* Defaults set by embed_image_opts_init(). */
#define EMBED_IMAGE_RESIZE_SHORT 256
#define EMBED_IMAGE_CROP 224
#define EMBED_IMAGE_MAX_FILE_BYTES (32u * 1024u * 1024u)
#define EMBED_IMAGE_MAX_PIXELS (64ull * 1024ull * 1024ull)
/* Hard ceilings that options cannot exceed. */
#define EMBED_IMAGE_MAX_SIDE 4096u

typedef struct embed_image_opts {
    uint32_t resize_short; /* shorter side after resize, >= crop, <= EMBED_IMAGE_MAX_SIDE */
    uint32_t crop;         /* side of the centre crop (the network input), >= 1 */
    float mean[3];         /* per channel R, G, B, on the 0..1 pixel scale */
    float std[3];          /* per channel, > 0, on the 0..1 pixel scale */
    size_t max_file_bytes; /* larger encoded inputs are refused */
    uint64_t max_pixels;   /* larger width*height (from the header) is refused */
} embed_image_opts_t;

/* Starts libvips for the process (VIPS_INIT). argv0 may be NULL. concurrency is the number of
 * worker threads libvips may use per pipeline; 0 keeps libvips' default. Thread-safe, runs
 * once; returns the result of that one run. */
int embed_image_global_init(const char *argv0, int concurrency, char *err, size_t errlen);

/* Sizes 256/224, ImageNet mean/std (torchvision ResNets), default caps. */
void embed_image_opts_init(embed_image_opts_t *opts);

/* Sets mean/std (and resize/crop sizes when the text states them) from a model's
 * "preprocessing" description. Returns EMBED_IMAGE_EINVAL, leaving opts untouched, when the
 * text names no normalisation this function understands. */
int embed_image_opts_parse_preprocessing(embed_image_opts_t *opts, const char *desc, char *err,
                                         size_t errlen);

/* Number of floats in one image's tensor: 3 * crop * crop. */
size_t embed_image_tensor_len(const embed_image_opts_t *opts);

/* Decodes, resizes, crops and normalises one image into out[embed_image_tensor_len()],
 * laid out CHW (one image of an NCHW batch). */
int embed_image_tensor_buffer(const void *data, size_t len, const embed_image_opts_t *opts, float *out,
                              char *err, size_t errlen);
int embed_image_tensor_file(const char *path, const embed_image_opts_t *opts, float *out, char *err,
                            size_t errlen);

/* Decoded, oriented, sRGB, alpha-on-white pixels, downsized (never enlarged) so that the
 * longer side is at most max_side (1..EMBED_IMAGE_MAX_SIDE). *rgb receives width*height*3
 * bytes, row-major RGB, malloc'd; the caller frees it. Caps come from opts (NULL: defaults). */
int embed_image_rgb_buffer(const void *data, size_t len, const embed_image_opts_t *opts, uint32_t max_side,
                           uint8_t **rgb, uint32_t *width, uint32_t *height, char *err, size_t errlen);
int embed_image_rgb_file(const char *path, const embed_image_opts_t *opts, uint32_t max_side, uint8_t **rgb,
                         uint32_t *width, uint32_t *height, char *err, size_t errlen);
/* ---- end Image pipeline ---- */

#endif
