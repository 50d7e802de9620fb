/* Test images made at run time with libvips itself, so no binary fixture has to be trusted. */
#ifndef TESTS_UNIT_EMBED_IMAGE_TESTUTIL_H
#define TESTS_UNIT_EMBED_IMAGE_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>
#include <vips/vips.h>

/* pixel(x, y, rgba) fills one pixel of a w x h image with `bands` (3 or 4) channels. */
typedef void (*testimg_pixel_fn)(int x, int y, uint8_t *px, void *ctx);

/* Builds an sRGB uchar image from the callback; unref with g_object_unref. */
VipsImage *testimg_make(int w, int h, int bands, testimg_pixel_fn fn, void *ctx);

/* Encodes with a libvips saver suffix such as ".png" or ".jpg[Q=95]"; g_free the result. */
void *testimg_encode(VipsImage *img, const char *suffix, size_t *len);

/* Runs the whole pipeline and returns the pixel (channel c, row y, col x) of the tensor
 * mapped back to 0..255 with the opts' mean/std. */
float testimg_tensor_pixel(const float *t, int crop, int c, int y, int x, const float mean[3],
                           const float std[3]);

#endif
