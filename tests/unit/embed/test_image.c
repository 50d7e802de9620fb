/* Image pipeline: formats, orientation, alpha, geometry and values against an independent
 * resampler, caps, corrupt input, thread safety. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "embed/embed.h"
#include "image_testutil.h"

static void setup(void)
{
    char err[256];
    cr_assert_eq(embed_image_global_init("test_image", 0, err, sizeof err), 0, "%s", err);
}

TestSuite(image, .init = setup);

/* ---- pixel generators ---- */

struct solid {
    uint8_t r, g, b, a;
};

static void px_solid(int x, int y, uint8_t *p, void *ctx)
{
    (void)x;
    (void)y;
    const struct solid *s = ctx;
    p[0] = s->r;
    p[1] = s->g;
    p[2] = s->b;
}

static void px_solid_rgba(int x, int y, uint8_t *p, void *ctx)
{
    px_solid(x, y, p, ctx);
    p[3] = ((const struct solid *)ctx)->a;
}

/* A smooth 2-D pattern, different per channel, steep enough (several levels per pixel) that a
 * one-pixel shift of the crop is far outside the tolerance. */
static double pattern(int c, double x, double y)
{
    switch (c) {
    case 0:
        return 128.0 + 100.0 * sin(x / 9.0) * cos(y / 13.0);
    case 1:
        return 128.0 + 90.0 * cos(x / 11.0 + y / 17.0);
    default:
        return 40.0 + 170.0 * (x + 2.0 * y) / (520.0 + 600.0);
    }
}

static void px_pattern(int x, int y, uint8_t *p, void *ctx)
{
    (void)ctx;
    for (int c = 0; c < 3; c++)
        p[c] = (uint8_t)lrint(pattern(c, x, y));
}

/* Quadrant colours of the stored image: TL red, TR green, BL blue, BR white. */
static const uint8_t quad_colour[4][3] = {{230, 20, 20}, {20, 230, 20}, {20, 20, 230}, {250, 250, 250}};

static int quadrant(int x, int y, int w, int h)
{
    return (y >= h / 2) * 2 + (x >= w / 2);
}

struct dims {
    int w, h;
};

static void px_quadrants(int x, int y, uint8_t *p, void *ctx)
{
    const struct dims *d = ctx;
    memcpy(p, quad_colour[quadrant(x, y, d->w, d->h)], 3);
}

static float tensor_px(const float *t, const embed_image_opts_t *o, int c, int y, int x)
{
    return testimg_tensor_pixel(t, (int)o->crop, c, y, x, o->mean, o->std);
}

/* ---- formats ---- */

struct fmt_case {
    const char *suffix;
    float tol; /* lossy formats shift a flat colour by a few levels */
};

static const struct fmt_case fmt_cases[] = {
    {".jpg[Q=95]", 4.0f}, {".png", 0.01f}, {".webp[lossless]", 0.01f}, {".gif", 0.01f}, {".tif", 0.01f},
};

Test(image, every_format_decodes_to_its_colour)
{
    struct solid s = {200, 100, 50, 255};
    VipsImage *img = testimg_make(300, 400, 3, px_solid, &s);
    embed_image_opts_t o;
    embed_image_opts_init(&o);
    float *t = malloc(embed_image_tensor_len(&o) * sizeof(float));
    for (size_t i = 0; i < sizeof fmt_cases / sizeof fmt_cases[0]; i++) {
        size_t len;
        void *buf = testimg_encode(img, fmt_cases[i].suffix, &len);
        char err[256] = "";
        int rc = embed_image_tensor_buffer(buf, len, &o, t, err, sizeof err);
        cr_assert_eq(rc, 0, "%s: %s", fmt_cases[i].suffix, err);
        const uint8_t want[3] = {s.r, s.g, s.b};
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < 224; y += 37)
                for (int x = 0; x < 224; x += 41)
                    cr_assert_float_eq(tensor_px(t, &o, c, y, x), want[c], fmt_cases[i].tol, "%s c%d (%d,%d)",
                                       fmt_cases[i].suffix, c, x, y);
        g_free(buf);
    }
    free(t);
    g_object_unref(img);
}

Test(image, gif_uses_first_frame)
{
    /* Two pages stacked vertically: red on top (frame 0), blue below (frame 1). */
    struct solid red = {255, 0, 0, 255}, blue = {0, 0, 255, 255};
    VipsImage *a = testimg_make(40, 40, 3, px_solid, &red), *b = testimg_make(40, 40, 3, px_solid, &blue);
    VipsImage *in[2] = {a, b}, *joined = NULL;
    cr_assert_eq(vips_arrayjoin(in, &joined, 2, "across", 1, NULL), 0);
    vips_image_set_int(joined, "page-height", 40);
    size_t len;
    void *buf = testimg_encode(joined, ".gif", &len);
    embed_image_opts_t o;
    embed_image_opts_init(&o);
    float *t = malloc(embed_image_tensor_len(&o) * sizeof(float));
    char err[256];
    cr_assert_eq(embed_image_tensor_buffer(buf, len, &o, t, err, sizeof err), 0, "%s", err);
    cr_assert_float_eq(tensor_px(t, &o, 0, 200, 100), 255.0f, 0.01f);
    cr_assert_float_eq(tensor_px(t, &o, 2, 200, 100), 0.0f, 0.01f);
    free(t);
    g_free(buf);
    g_object_unref(joined);
    g_object_unref(a);
    g_object_unref(b);
}

Test(image, grey_and_16bit_png_become_rgb)
{
    /* 16-bit grey: value 0x8080 becomes 128 in all three channels. */
    size_t n = 50 * 60;
    uint16_t *px = malloc(n * sizeof *px);
    for (size_t i = 0; i < n; i++)
        px[i] = 0x8080;
    VipsImage *raw = vips_image_new_from_memory_copy(px, n * 2, 50, 60, 1, VIPS_FORMAT_USHORT), *g16 = NULL;
    free(px);
    cr_assert_eq(vips_copy(raw, &g16, "interpretation", VIPS_INTERPRETATION_GREY16, NULL), 0);
    size_t len;
    void *buf = testimg_encode(g16, ".png", &len);
    embed_image_opts_t o;
    embed_image_opts_init(&o);
    float *t = malloc(embed_image_tensor_len(&o) * sizeof(float));
    char err[256];
    cr_assert_eq(embed_image_tensor_buffer(buf, len, &o, t, err, sizeof err), 0, "%s", err);
    for (int c = 0; c < 3; c++)
        cr_assert_float_eq(tensor_px(t, &o, c, 100, 100), 128.0f, 0.6f);
    free(t);
    g_free(buf);
    g_object_unref(g16);
    g_object_unref(raw);
}

/* ---- EXIF orientation ---- */

/* Maps a displayed pixel back to the stored one for each EXIF orientation (TIFF/EXIF spec). */
static void display_to_stored(int o, int x, int y, int w, int h, int *sx, int *sy)
{
    switch (o) {
    case 2:
        *sx = w - 1 - x, *sy = y;
        break;
    case 3:
        *sx = w - 1 - x, *sy = h - 1 - y;
        break;
    case 4:
        *sx = x, *sy = h - 1 - y;
        break;
    case 5:
        *sx = y, *sy = x;
        break;
    case 6:
        *sx = y, *sy = h - 1 - x;
        break;
    case 7:
        *sx = w - 1 - y, *sy = h - 1 - x;
        break;
    case 8:
        *sx = w - 1 - y, *sy = x;
        break;
    default:
        *sx = x, *sy = y;
    }
}

static int nearest_quadrant_colour(const float rgb[3])
{
    int best = -1;
    float bestd = 1e9f;
    for (int q = 0; q < 4; q++) {
        float d = 0;
        for (int c = 0; c < 3; c++)
            d += fabsf(rgb[c] - quad_colour[q][c]);
        if (d < bestd)
            bestd = d, best = q;
    }
    return best;
}

Test(image, exif_orientation_all_eight)
{
    const int W = 96, H = 64;
    struct dims d = {W, H};
    VipsImage *img = testimg_make(W, H, 3, px_quadrants, &d);
    embed_image_opts_t o;
    embed_image_opts_init(&o);
    o.resize_short = 64;
    o.crop = 64;
    float *t = malloc(embed_image_tensor_len(&o) * sizeof(float));
    for (int orient = 1; orient <= 8; orient++) {
        VipsImage *tagged = NULL;
        cr_assert_eq(vips_copy(img, &tagged, NULL), 0);
        vips_image_set_int(tagged, VIPS_META_ORIENTATION, orient);
        size_t len;
        void *buf = testimg_encode(tagged, ".jpg[Q=100]", &len);
        char err[256];
        cr_assert_eq(embed_image_tensor_buffer(buf, len, &o, t, err, sizeof err), 0, "%s", err);
        int dw = orient >= 5 ? H : W, dh = orient >= 5 ? W : H;
        /* No resize (the shorter side is already 64); the crop takes the centre of the longer. */
        int offx = (dw - 64) / 2, offy = (dh - 64) / 2;
        for (int y = 4; y < 64; y += 8)
            for (int x = 4; x < 64; x += 8) {
                int sx, sy;
                display_to_stored(orient, x + offx, y + offy, W, H, &sx, &sy);
                if (abs(sx - W / 2) < 4 || abs(sy - H / 2) < 4)
                    continue; /* JPEG ringing at the quadrant edges */
                float rgb[3];
                for (int c = 0; c < 3; c++)
                    rgb[c] = tensor_px(t, &o, c, y, x);
                cr_assert_eq(nearest_quadrant_colour(rgb), quadrant(sx, sy, W, H),
                             "orientation %d at (%d,%d)", orient, x, y);
            }
        g_free(buf);
        g_object_unref(tagged);
    }
    free(t);
    g_object_unref(img);
}

/* ---- alpha ---- */

Test(image, alpha_is_flattened_onto_white)
{
    embed_image_opts_t o;
    embed_image_opts_init(&o);
    float *t = malloc(embed_image_tensor_len(&o) * sizeof(float));
    const struct {
        struct solid s;
        float want[3];
    } cases[] = {
        {{0, 0, 0, 0}, {255, 255, 255}},           /* transparent black shows white */
        {{255, 0, 0, 255}, {255, 0, 0}},           /* opaque stays */
        {{255, 0, 0, 128}, {255, 127.0f, 127.0f}}, /* 50% red over white */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        VipsImage *img = testimg_make(260, 260, 4, px_solid_rgba, (void *)&cases[i].s);
        const char *fmts[] = {".png", ".webp[lossless]", ".tif"};
        for (size_t f = 0; f < 3; f++) {
            size_t len;
            void *buf = testimg_encode(img, fmts[f], &len);
            char err[256];
            cr_assert_eq(embed_image_tensor_buffer(buf, len, &o, t, err, sizeof err), 0, "%s", err);
            for (int c = 0; c < 3; c++)
                cr_assert_float_eq(tensor_px(t, &o, c, 112, 112), cases[i].want[c], 1.01f, "case %zu %s c%d",
                                   i, fmts[f], c);
            g_free(buf);
        }
        g_object_unref(img);
    }
    free(t);
}

/* ---- geometry and values against an independent resampler ---- */

/* PIL's antialiased bilinear (ImagingResample, triangle filter) in double precision, one axis. */
static void resample_axis(const double *in, int n_in, double *out, int n_out, int stride_in, int stride_out)
{
    double scale = (double)n_in / n_out, fs = scale > 1.0 ? scale : 1.0, support = fs;
    for (int i = 0; i < n_out; i++) {
        double centre = (i + 0.5) * scale, total = 0, acc = 0;
        int lo = (int)(centre - support + 0.5), hi = (int)(centre + support + 0.5);
        if (lo < 0)
            lo = 0;
        if (hi > n_in)
            hi = n_in;
        for (int x = lo; x < hi; x++) {
            double u = fabs((x - centre + 0.5) / fs), wgt = u < 1.0 ? 1.0 - u : 0.0;
            total += wgt;
            acc += wgt * in[(size_t)x * stride_in];
        }
        out[(size_t)i * stride_out] = acc / total;
    }
}

Test(image, resize_and_crop_match_independent_reference)
{
    const int W = 520, H = 300;
    VipsImage *img = testimg_make(W, H, 3, px_pattern, NULL);
    size_t len;
    void *buf = testimg_encode(img, ".png", &len);
    embed_image_opts_t o;
    embed_image_opts_init(&o);
    float *t = malloc(embed_image_tensor_len(&o) * sizeof(float));
    char err[256];
    cr_assert_eq(embed_image_tensor_buffer(buf, len, &o, t, err, sizeof err), 0, "%s", err);

    /* torchvision: Resize(256) -> 256 x floor(520*256/300) = 443; CenterCrop(224) offsets
     * round(219/2) = 110 (half to even) and 16. */
    const int TW = 443, TH = 256, OX = 110, OY = 16;
    double *src = malloc(sizeof(double) * W * H), *mid = malloc(sizeof(double) * TW * H),
           *dst = malloc(sizeof(double) * TW * TH);
    double max_diff = 0, sum_diff = 0;
    for (int c = 0; c < 3; c++) {
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++)
                src[(size_t)y * W + x] = lrint(pattern(c, x, y));
        for (int y = 0; y < H; y++)
            resample_axis(src + (size_t)y * W, W, mid + (size_t)y * TW, TW, 1, 1);
        for (int x = 0; x < TW; x++)
            resample_axis(mid + x, H, dst + x, TH, TW, TW);
        for (int y = 0; y < 224; y++)
            for (int x = 0; x < 224; x++) {
                double d = fabs(tensor_px(t, &o, c, y, x) - dst[(size_t)(y + OY) * TW + x + OX]);
                sum_diff += d;
                if (d > max_diff)
                    max_diff = d;
            }
    }
    double mean_diff = sum_diff / (3.0 * 224 * 224);
    cr_log_info("resize vs reference: max %.3f mean %.4f levels", max_diff, mean_diff);
    cr_assert_leq(max_diff, 1.5, "max diff %.3f levels", max_diff);
    cr_assert_leq(mean_diff, 0.4, "mean diff %.4f levels", mean_diff);
    free(src);
    free(mid);
    free(dst);
    free(t);
    g_free(buf);
    g_object_unref(img);
}

Test(image, normalisation_matches_formula)
{
    struct solid s = {10, 128, 250, 255};
    VipsImage *img = testimg_make(256, 256, 3, px_solid, &s);
    size_t len;
    void *buf = testimg_encode(img, ".png", &len);
    embed_image_opts_t o;
    embed_image_opts_init(&o);
    char err[256];
    cr_assert_eq(
        embed_image_opts_parse_preprocessing(&o, "value = pixel/127.5 - 1 (range [-1,1])", err, sizeof err),
        0);
    float *t = malloc(embed_image_tensor_len(&o) * sizeof(float));
    cr_assert_eq(embed_image_tensor_buffer(buf, len, &o, t, err, sizeof err), 0, "%s", err);
    cr_assert_float_eq(t[0], 10 / 127.5f - 1, 1e-5f);
    cr_assert_float_eq(t[224 * 224], 128 / 127.5f - 1, 1e-5f);
    cr_assert_float_eq(t[2 * 224 * 224 + 5000], 250 / 127.5f - 1, 1e-5f);
    embed_image_opts_init(&o);
    cr_assert_eq(embed_image_tensor_buffer(buf, len, &o, t, err, sizeof err), 0, "%s", err);
    cr_assert_float_eq(t[0], (10 / 255.0f - 0.485f) / 0.229f, 1e-5f);
    cr_assert_float_eq(t[224 * 224], (128 / 255.0f - 0.456f) / 0.224f, 1e-5f);
    cr_assert_float_eq(t[2 * 224 * 224], (250 / 255.0f - 0.406f) / 0.225f, 1e-5f);
    free(t);
    g_free(buf);
    g_object_unref(img);
}

Test(image, preprocessing_text_is_parsed)
{
    embed_image_opts_t o;
    char err[256];
    embed_image_opts_init(&o);
    cr_assert_eq(
        embed_image_opts_parse_preprocessing(&o,
                                             "RGB; resize shorter side to 256 (bilinear), center crop "
                                             "224x224; value = pixel/127.5 - 1 (range [-1,1]); NCHW float32",
                                             err, sizeof err),
        0, "%s", err);
    for (int c = 0; c < 3; c++) {
        cr_assert_float_eq(o.mean[c], 0.5f, 1e-7f);
        cr_assert_float_eq(o.std[c], 0.5f, 1e-7f);
    }
    cr_assert_eq(o.resize_short, 256);
    cr_assert_eq(o.crop, 224);
    cr_assert_eq(embed_image_opts_parse_preprocessing(&o,
                                                      "resize shorter side to 288, center crop 256x256; "
                                                      "mean=0.485,0.456,0.406; std=[0.229, 0.224, 0.225]",
                                                      err, sizeof err),
                 0, "%s", err);
    cr_assert_float_eq(o.mean[1], 0.456f, 1e-7f);
    cr_assert_float_eq(o.std[2], 0.225f, 1e-7f);
    cr_assert_eq(o.resize_short, 288);
    cr_assert_eq(o.crop, 256);
    cr_assert_eq(embed_image_opts_parse_preprocessing(
                     &o, "mean=123.675,116.28,103.53 std=58.395,57.12,57.375", err, sizeof err),
                 0, "%s", err);
    cr_assert_float_eq(o.mean[0], 0.485f, 1e-6f);
    cr_assert_float_eq(o.std[0], 0.229f, 1e-6f);
    embed_image_opts_t before = o;
    cr_assert_eq(embed_image_opts_parse_preprocessing(&o, "whatever the model likes", err, sizeof err),
                 EMBED_IMAGE_EINVAL);
    cr_assert_eq(embed_image_opts_parse_preprocessing(&o, "mean=1,2 std=1,2,3", err, sizeof err),
                 EMBED_IMAGE_EINVAL);
    cr_assert_eq(embed_image_opts_parse_preprocessing(&o, "mean=0.5,0.5,0.5 std=0,1,1", err, sizeof err),
                 EMBED_IMAGE_EINVAL);
    cr_assert_eq(memcmp(&before, &o, sizeof o), 0, "a failed parse must leave the options untouched");
}

/* ---- caps and hostile input ---- */

static uint32_t crc32_update(uint32_t crc, const uint8_t *p, size_t n)
{
    crc = ~crc;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
    }
    return ~crc;
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

Test(image, header_dimensions_over_pixel_cap_are_refused_before_decoding)
{
    struct solid s = {1, 2, 3, 255};
    VipsImage *img = testimg_make(16, 16, 3, px_solid, &s);
    embed_image_opts_t o;
    embed_image_opts_init(&o);
    float *t = malloc(embed_image_tensor_len(&o) * sizeof(float));
    char err[256];

    /* PNG claiming 100000 x 100000 (10 Gpx) with a valid IHDR CRC: a classic bomb header. */
    size_t len;
    uint8_t *png = testimg_encode(img, ".png", &len);
    cr_assert_eq(memcmp(png + 12, "IHDR", 4), 0);
    put_be32(png + 16, 100000);
    put_be32(png + 20, 100000);
    put_be32(png + 29, crc32_update(0, png + 12, 17));
    cr_assert_eq(embed_image_tensor_buffer(png, len, &o, t, err, sizeof err), EMBED_IMAGE_ETOOLARGE, "%s",
                 err);
    cr_assert_not_null(strstr(err, "too large"), "%s", err);
    g_free(png);

    /* JPEG whose SOF0 claims 60000 x 60000. */
    uint8_t *jpg = testimg_encode(img, ".jpg", &len);
    size_t i = 2;
    while (i + 9 < len && !(jpg[i] == 0xFF && jpg[i + 1] == 0xC0))
        i++;
    cr_assert_lt(i + 9, len, "no SOF0 marker");
    jpg[i + 5] = 60000 >> 8, jpg[i + 6] = 60000 & 0xFF;
    jpg[i + 7] = 60000 >> 8, jpg[i + 8] = 60000 & 0xFF;
    cr_assert_eq(embed_image_tensor_buffer(jpg, len, &o, t, err, sizeof err), EMBED_IMAGE_ETOOLARGE, "%s",
                 err);
    g_free(jpg);

    /* A real image over a lowered cap. */
    VipsImage *big = testimg_make(2000, 1000, 3, px_solid, &s);
    void *bigbuf = testimg_encode(big, ".png", &len);
    o.max_pixels = 1000 * 1000;
    cr_assert_eq(embed_image_tensor_buffer(bigbuf, len, &o, t, err, sizeof err), EMBED_IMAGE_ETOOLARGE, "%s",
                 err);
    o.max_pixels = 2000 * 1000;
    cr_assert_eq(embed_image_tensor_buffer(bigbuf, len, &o, t, err, sizeof err), 0, "%s", err);
    g_free(bigbuf);
    g_object_unref(big);
    free(t);
    g_object_unref(img);
}

Test(image, file_size_cap)
{
    struct solid s = {1, 2, 3, 255};
    VipsImage *img = testimg_make(300, 300, 3, px_solid, &s);
    size_t len;
    void *buf = testimg_encode(img, ".png", &len);
    char path[] = "/tmp/embed-test-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, buf, len), (ssize_t)len);
    close(fd);
    embed_image_opts_t o;
    embed_image_opts_init(&o);
    float *t = malloc(embed_image_tensor_len(&o) * sizeof(float));
    char err[256];
    cr_assert_eq(embed_image_tensor_file(path, &o, t, err, sizeof err), 0, "%s", err);
    o.max_file_bytes = len - 1;
    cr_assert_eq(embed_image_tensor_file(path, &o, t, err, sizeof err), EMBED_IMAGE_ETOOLARGE, "%s", err);
    cr_assert_not_null(strstr(err, "too large"), "%s", err);
    cr_assert_not_null(strstr(err, path), "the message names the file: %s", err);
    cr_assert_eq(embed_image_tensor_buffer(buf, len, &o, t, err, sizeof err), EMBED_IMAGE_ETOOLARGE, "%s",
                 err);
    unlink(path);
    free(t);
    g_free(buf);
    g_object_unref(img);
}

Test(image, corrupt_truncated_and_unknown_inputs_are_errors)
{
    VipsImage *img = testimg_make(200, 150, 3, px_pattern, NULL);
    embed_image_opts_t o;
    embed_image_opts_init(&o);
    float *t = malloc(embed_image_tensor_len(&o) * sizeof(float));
    char err[256];
    const char *fmts[] = {".jpg", ".png", ".webp", ".gif", ".tif"};
    for (size_t f = 0; f < 5; f++) {
        size_t len;
        uint8_t *buf = testimg_encode(img, fmts[f], &len);
        /* Cut at several points, from inside the header to just before the end. */
        const size_t cuts[] = {len / 8, len / 3, len / 2, len - 16};
        for (size_t k = 0; k < 4; k++) {
            err[0] = '\0';
            int rc = embed_image_tensor_buffer(buf, cuts[k], &o, t, err, sizeof err);
            cr_assert(rc == EMBED_IMAGE_ECORRUPT, "%s cut at %zu/%zu: rc %d (%s)", fmts[f], cuts[k], len, rc,
                      err);
            cr_assert_neq(err[0], '\0');
        }
        /* Garbage after a valid magic. */
        for (size_t i = 16; i < len; i++)
            buf[i] = (uint8_t)(i * 131u + 7u);
        int rc = embed_image_tensor_buffer(buf, len, &o, t, err, sizeof err);
        cr_assert(rc == EMBED_IMAGE_ECORRUPT, "%s garbage: rc %d (%s)", fmts[f], rc, err);
        g_free(buf);
    }
    const char text[] = "<svg xmlns='http://www.w3.org/2000/svg'/>";
    cr_assert_eq(embed_image_tensor_buffer(text, sizeof text - 1, &o, t, err, sizeof err),
                 EMBED_IMAGE_EFORMAT);
    cr_assert_not_null(strstr(err, "unsupported image format"), "%s", err);
    cr_assert_eq(embed_image_tensor_buffer("", 0, &o, t, err, sizeof err), EMBED_IMAGE_EFORMAT);
    cr_assert_eq(embed_image_tensor_file("/nonexistent/photo.jpg", &o, t, err, sizeof err), EMBED_IMAGE_EIO);
    cr_assert_not_null(strstr(err, "/nonexistent/photo.jpg"), "%s", err);
    cr_assert_eq(embed_image_tensor_file("/tmp", &o, t, err, sizeof err), EMBED_IMAGE_EIO);
    o.crop = 300;
    cr_assert_eq(embed_image_tensor_buffer("x", 1, &o, t, err, sizeof err), EMBED_IMAGE_EINVAL);
    free(t);
    g_object_unref(img);
}

/* ---- RGB accessor ---- */

Test(image, rgb_accessor_downsizes_and_orients)
{
    const int W = 400, H = 300;
    struct dims d = {W, H};
    VipsImage *img = testimg_make(W, H, 3, px_quadrants, &d);
    VipsImage *tagged = NULL;
    cr_assert_eq(vips_copy(img, &tagged, NULL), 0);
    vips_image_set_int(tagged, VIPS_META_ORIENTATION, 6);
    size_t len;
    void *plain = testimg_encode(img, ".png", &len);
    uint8_t *rgb = NULL;
    uint32_t w = 0, h = 0;
    char err[256];
    cr_assert_eq(embed_image_rgb_buffer(plain, len, NULL, 64, &rgb, &w, &h, err, sizeof err), 0, "%s", err);
    cr_assert_eq(w, 64);
    cr_assert_eq(h, 48);
    cr_assert_eq(rgb[(5 * w + 5) * 3 + 0], quad_colour[0][0]);
    cr_assert_eq(rgb[(5 * w + 60) * 3 + 1], quad_colour[1][1]);
    free(rgb);
    g_free(plain);

    void *jpg = testimg_encode(tagged, ".jpg[Q=100]", &len);
    cr_assert_eq(embed_image_rgb_buffer(jpg, len, NULL, 64, &rgb, &w, &h, err, sizeof err), 0, "%s", err);
    cr_assert_eq(w, 48, "orientation 6 swaps the sides");
    cr_assert_eq(h, 64);
    /* Displayed top-left comes from the stored bottom-left (blue). */
    float px[3] = {rgb[(4 * w + 4) * 3], rgb[(4 * w + 4) * 3 + 1], rgb[(4 * w + 4) * 3 + 2]};
    cr_assert_eq(nearest_quadrant_colour(px), 2);
    free(rgb);
    g_free(jpg);

    /* Small images are not enlarged. */
    struct solid s = {9, 9, 9, 255};
    VipsImage *tiny = testimg_make(20, 10, 3, px_solid, &s);
    void *tb = testimg_encode(tiny, ".png", &len);
    cr_assert_eq(embed_image_rgb_buffer(tb, len, NULL, 64, &rgb, &w, &h, err, sizeof err), 0, "%s", err);
    cr_assert_eq(w, 20);
    cr_assert_eq(h, 10);
    cr_assert_eq(rgb[0], 9);
    free(rgb);
    cr_assert_eq(embed_image_rgb_buffer(tb, len, NULL, 0, &rgb, &w, &h, err, sizeof err), EMBED_IMAGE_EINVAL);
    g_free(tb);
    g_object_unref(tiny);
    g_object_unref(tagged);
    g_object_unref(img);
}

/* ---- real photos and threads ---- */

static int first_product_photo(char *path, size_t n)
{
    const char *data = getenv("DATA_DIR");
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/products/validation/shoes", data ? data : "../shared/data");
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    struct dirent *e;
    int rc = -1;
    while ((e = readdir(d)) != NULL)
        if (strstr(e->d_name, ".jpg")) {
            snprintf(path, n, "%s/%s", dir, e->d_name);
            rc = 0;
            break;
        }
    closedir(d);
    return rc;
}

Test(image, product_photo_tensor_and_rgb)
{
    char path[1400];
    cr_assert_eq(first_product_photo(path, sizeof path), 0, "products data set missing (DATA_DIR)");
    embed_image_opts_t o;
    embed_image_opts_init(&o);
    float *t = malloc(embed_image_tensor_len(&o) * sizeof(float));
    char err[256];
    cr_assert_eq(embed_image_tensor_file(path, &o, t, err, sizeof err), 0, "%s", err);
    double lo = 1e9, hi = -1e9;
    for (size_t i = 0; i < embed_image_tensor_len(&o); i++) {
        cr_assert(isfinite(t[i]));
        lo = fmin(lo, t[i]);
        hi = fmax(hi, t[i]);
    }
    cr_assert_geq(lo, (0 - 0.485) / 0.229 - 1e-4);
    cr_assert_leq(hi, (1 - 0.406) / 0.225 + 1e-4);
    cr_assert_gt(hi - lo, 1.0, "a photo is not flat");
    uint8_t *rgb;
    uint32_t w, h;
    cr_assert_eq(embed_image_rgb_file(path, NULL, 64, &rgb, &w, &h, err, sizeof err), 0, "%s", err);
    cr_assert(w == 64 || h == 64);
    free(rgb);
    free(t);
}

struct worker {
    const void *buf;
    size_t len;
    const float *want;
    int mismatches;
};

static void *worker_run(void *arg)
{
    struct worker *w = arg;
    embed_image_opts_t o;
    embed_image_opts_init(&o);
    size_t n = embed_image_tensor_len(&o);
    float *t = malloc(n * sizeof(float));
    char err[256];
    for (int i = 0; i < 8; i++)
        if (embed_image_tensor_buffer(w->buf, w->len, &o, t, err, sizeof err) != 0 ||
            memcmp(t, w->want, n * sizeof(float)) != 0)
            w->mismatches++;
    free(t);
    return NULL;
}

Test(image, concurrent_calls_give_serial_results)
{
    VipsImage *a = testimg_make(400, 300, 3, px_pattern, NULL);
    struct dims d = {300, 500};
    VipsImage *b = testimg_make(300, 500, 3, px_quadrants, &d);
    size_t la, lb;
    void *ba = testimg_encode(a, ".jpg", &la), *bb = testimg_encode(b, ".webp", &lb);
    embed_image_opts_t o;
    embed_image_opts_init(&o);
    size_t n = embed_image_tensor_len(&o);
    float *wa = malloc(n * sizeof(float)), *wb = malloc(n * sizeof(float));
    char err[256];
    cr_assert_eq(embed_image_tensor_buffer(ba, la, &o, wa, err, sizeof err), 0, "%s", err);
    cr_assert_eq(embed_image_tensor_buffer(bb, lb, &o, wb, err, sizeof err), 0, "%s", err);
    struct worker w[4] = {{ba, la, wa, 0}, {bb, lb, wb, 0}, {ba, la, wa, 0}, {bb, lb, wb, 0}};
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        cr_assert_eq(pthread_create(&th[i], NULL, worker_run, &w[i]), 0);
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        cr_assert_eq(w[i].mismatches, 0, "thread %d", i);
    }
    free(wa);
    free(wb);
    g_free(ba);
    g_free(bb);
    g_object_unref(a);
    g_object_unref(b);
}

/* The same JPEG bytes with an EXIF block (orientation 1) after SOI: the pixels are the same,
 * but the EXIF block sends the image down the libvips path instead of the direct one. */
static uint8_t *with_exif(const uint8_t *jpeg, size_t len, size_t *out_len)
{
    static const uint8_t app1[] = {0xFF, 0xE1, 0x00, 0x22, 'E',  'x',  'i',  'f',  0,    0,    'I',  'I',
                                   0x2A, 0x00, 0x08, 0x00, 0x00, 0x00, 0x01, 0x00, 0x12, 0x01, 0x03, 0x00,
                                   0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
    uint8_t *b = malloc(len + sizeof app1);
    memcpy(b, jpeg, 2);
    memcpy(b + 2, app1, sizeof app1);
    memcpy(b + 2 + sizeof app1, jpeg + 2, len - 2);
    *out_len = len + sizeof app1;
    return b;
}

static void px_grey(int x, int y, uint8_t *p, void *ctx)
{
    (void)ctx;
    p[0] = (uint8_t)lrint(pattern(0, x, y));
}

Test(image, direct_jpeg_path_agrees_with_libvips_path)
{
    char path[1400];
    cr_assert_eq(first_product_photo(path, sizeof path), 0, "products data set missing (DATA_DIR)");
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f);
    fseek(f, 0, SEEK_END);
    size_t len = (size_t)ftell(f), xlen;
    rewind(f);
    uint8_t *jpeg = malloc(len);
    cr_assert_eq(fread(jpeg, 1, len, f), len);
    fclose(f);
    uint8_t *exif = with_exif(jpeg, len, &xlen);
    /* A grey JPEG and an odd size (upscaled, portrait) take the direct path too. */
    VipsImage *grey = testimg_make(150, 203, 1, px_grey, NULL);
    size_t glen;
    uint8_t *g = testimg_encode(grey, ".jpg", &glen), *gx;
    size_t gxlen;
    gx = with_exif(g, glen, &gxlen);
    embed_image_opts_t o;
    embed_image_opts_init(&o);
    size_t n = embed_image_tensor_len(&o);
    float *a = malloc(n * sizeof(float)), *b = malloc(n * sizeof(float));
    char err[256];
    const uint8_t *plain[2] = {jpeg, g}, *marked[2] = {exif, gx};
    size_t plen[2] = {len, glen}, mlen[2] = {xlen, gxlen};
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(embed_image_tensor_buffer(plain[i], plen[i], &o, a, err, sizeof err), 0, "%s", err);
        cr_assert_eq(embed_image_tensor_buffer(marked[i], mlen[i], &o, b, err, sizeof err), 0, "%s", err);
        /* Both are antialiased bilinear; they differ only in rounding (a few levels at most). */
        double sum = 0, worst = 0;
        for (size_t j = 0; j < n; j++) {
            double d = fabs((double)a[j] - b[j]) * 0.229 * 255.0;
            sum += d;
            worst = fmax(worst, d);
        }
        cr_assert_leq(worst, 6.0, "image %d: max difference %.2f levels", i, worst);
        cr_assert_leq(sum / n, 0.5, "image %d: mean difference %.3f levels", i, sum / n);
    }
    g_object_unref(grey);
    g_free(g);
    free(gx);
    free(a);
    free(b);
    free(jpeg);
    free(exif);
}
