/* The direct JPEG path of the image pipeline (private to src/embed; design in image_jpeg.c). */
#ifndef EMBED_IMAGE_JPEG_H
#define EMBED_IMAGE_JPEG_H

#include "embed/embed.h"

#include <stddef.h>

/* Most pixels the direct path decodes into memory at once; larger photos take libvips'
 * streaming path. */
#define EMBED_JPEG_FAST_MAX_PIXELS (16u * 1024u * 1024u)

/* Turns a plain JPEG (YCbCr, RGB or grey; no EXIF block, no ICC profile; within opts' caps and
 * EMBED_JPEG_FAST_MAX_PIXELS) into the network input tensor out (embed_image_tensor_len()
 * floats), exactly as PIL and torchvision would: 1 when it did, 0 when the image is not one
 * it takes or anything about it is unusual (a libjpeg warning or error, out of memory), so
 * the caller's general path decides, with its own messages. opts must have passed its checks. */
int embed_jpeg_tensor(const void *data, size_t len, const embed_image_opts_t *opts, float *out);

#endif
