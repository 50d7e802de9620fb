#include "image_testutil.h"

#include <criterion/criterion.h>
#include <stdlib.h>

VipsImage *testimg_make(int w, int h, int bands, testimg_pixel_fn fn, void *ctx)
{
    size_t len = (size_t)w * h * bands;
    uint8_t *px = malloc(len);
    cr_assert_not_null(px);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            fn(x, y, px + ((size_t)y * w + x) * bands, ctx);
    VipsImage *raw = vips_image_new_from_memory_copy(px, len, w, h, bands, VIPS_FORMAT_UCHAR);
    free(px);
    cr_assert_not_null(raw, "%s", vips_error_buffer());
    VipsImage *out = NULL;
    cr_assert_eq(vips_copy(raw, &out, "interpretation", VIPS_INTERPRETATION_sRGB, NULL), 0);
    g_object_unref(raw);
    return out;
}

void *testimg_encode(VipsImage *img, const char *suffix, size_t *len)
{
    void *buf = NULL;
    int rc = vips_image_write_to_buffer(img, suffix, &buf, len, NULL);
    cr_assert_eq(rc, 0, "encode %s: %s", suffix, vips_error_buffer());
    return buf;
}

float testimg_tensor_pixel(const float *t, int crop, int c, int y, int x, const float mean[3],
                           const float std[3])
{
    float v = t[(size_t)c * crop * crop + (size_t)y * crop + x];
    return (v * std[c] + mean[c]) * 255.0f;
}
