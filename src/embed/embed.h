/* embed: image to vector. Runs pretrained ONNX image CNNs (ResNet, MobileNet, SqueezeNet
 * families) on CPU kernels, with the image pipeline (libvips) in front of them.
 *
 * This header is shared by two parts of the module; each part documents its own design in
 * its section below.
 */
#ifndef EMBED_EMBED_H
#define EMBED_EMBED_H

#include <stddef.h>
#include <stdint.h>

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
 * pin memory.
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
