/* The direct JPEG path: libjpeg-turbo decodes straight into an RGB buffer, then a two-pass
 * resample computes only the centre crop, with Pillow's antialiased bilinear arithmetic
 * (Resample.c: triangle filter widened by the scale, coefficients in 22-bit fixed point, a
 * horizontal pass rounded to 8 bits, then a vertical one), and the crop is normalised. A
 * product photo costs about a tenth of the libvips pipeline's CPU (whose per-operation object
 * machinery and worker threads cost more than the pixels), and the values are PIL's own.
 * Anything it does not take (EXIF orientation, ICC profiles, CMYK, huge images, damaged
 * data) goes the general libvips path, which stays the reference for messages and edge cases. */
#include "embed/image_jpeg.h"

#include <limits.h>
#include <math.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>

/* Pillow's fixed-point precision for 8-bit images. */
#define PRECISION_BITS (32 - 8 - 2)
/* Bytes of an APP marker kept to recognise it (the identifier strings). */
#define MARKER_PEEK 16

typedef struct {
    struct jpeg_error_mgr pub;
    jmp_buf jump;
} jerr_t;

static void on_error(j_common_ptr c)
{
    longjmp(((jerr_t *)c->err)->jump, 1);
}

/* A warning (corrupt data, premature end) hands the image to the general path too. */
static void on_message(j_common_ptr c, int level)
{
    if (level < 0)
        longjmp(((jerr_t *)c->err)->jump, 1);
}

static void on_output(j_common_ptr c)
{
    (void)c;
}

/* Output index i of a resample from in_size to out_size reads in[first[i] .. first[i]+count[i])
 * with weights k[i * ksize ..] (Pillow's precompute_coeffs and normalize_coeffs_8bpc). */
typedef struct {
    int ksize;
    int *first, *count;
    int32_t *k;
} coeffs_t;

static void coeffs_free(coeffs_t *c)
{
    free(c->first);
    free(c->count);
    free(c->k);
}

static int coeffs_make(int in_size, int out_size, coeffs_t *c)
{
    double scale = (double)in_size / out_size, filterscale = scale < 1.0 ? 1.0 : scale;
    double support = 1.0 * filterscale, ss = 1.0 / filterscale;
    c->ksize = (int)ceil(support) * 2 + 1;
    c->first = malloc((size_t)out_size * sizeof *c->first);
    c->count = malloc((size_t)out_size * sizeof *c->count);
    c->k = calloc((size_t)out_size * (size_t)c->ksize, sizeof *c->k);
    double *w = malloc((size_t)c->ksize * sizeof *w);
    if (!c->first || !c->count || !c->k || !w) {
        free(w);
        coeffs_free(c);
        return -1;
    }
    for (int xx = 0; xx < out_size; xx++) {
        double center = (xx + 0.5) * scale, ww = 0.0;
        int xmin = (int)(center - support + 0.5), xmax;
        if (xmin < 0)
            xmin = 0;
        xmax = (int)(center + support + 0.5);
        if (xmax > in_size)
            xmax = in_size;
        xmax -= xmin;
        for (int x = 0; x < xmax; x++) {
            double t = fabs((x + xmin - center + 0.5) * ss);
            w[x] = t < 1.0 ? 1.0 - t : 0.0;
            ww += w[x];
        }
        for (int x = 0; x < xmax; x++) {
            double v = ww != 0.0 ? w[x] / ww : w[x];
            c->k[(size_t)xx * c->ksize + x] =
                (int32_t)(v < 0 ? -0.5 + v * (1 << PRECISION_BITS) : 0.5 + v * (1 << PRECISION_BITS));
        }
        c->first[xx] = xmin;
        c->count[xx] = xmax;
    }
    free(w);
    return 0;
}

static uint8_t clip8(int32_t v)
{
    if (v >= (1 << PRECISION_BITS << 8))
        return 255;
    if (v <= 0)
        return 0;
    return (uint8_t)(v >> PRECISION_BITS);
}

/* Reads the whole image as RGB rows into rgb (output_width * 3 * output_height bytes). The
 * caller owns the buffer, so that a decoding error, which jumps out, cannot leak it. */
static void decode(struct jpeg_decompress_struct *c, uint8_t *rgb)
{
    size_t stride = (size_t)c->output_width * 3;
    while (c->output_scanline < c->output_height) {
        JSAMPROW row = rgb + stride * c->output_scanline;
        jpeg_read_scanlines(c, &row, 1);
    }
}

/* 1 if the header says the general path must take it: an EXIF block (orientation), an ICC
 * profile, or a colour space other than YCbCr, RGB or grey. */
static int needs_general_path(const struct jpeg_decompress_struct *c)
{
    for (jpeg_saved_marker_ptr m = c->marker_list; m; m = m->next) {
        if (m->marker == JPEG_APP0 + 1 && m->data_length >= 6 && memcmp(m->data, "Exif\0", 5) == 0)
            return 1;
        if (m->marker == JPEG_APP0 + 2 && m->data_length >= 12 && memcmp(m->data, "ICC_PROFILE\0", 12) == 0)
            return 1;
    }
    if (c->num_components == 1)
        return c->jpeg_color_space != JCS_GRAYSCALE;
    return c->num_components != 3 || (c->jpeg_color_space != JCS_YCbCr && c->jpeg_color_space != JCS_RGB);
}

/* torchvision's CenterCrop offset: int(round((size - crop) / 2)), round half to even. */
static int crop_offset(int size, int crop)
{
    int d = size - crop, half = d / 2;
    if (d % 2 != 0 && half % 2 != 0)
        half++;
    return half;
}

/* acc[0..n) += row[0..n) * k: the vertical pass's inner loop. Compiled with -O3 (mk/embed.mk)
 * so that it is vectorised, once for the baseline x86-64 (SSE2) and once for AVX2, whose 8-lane
 * 32-bit multiply SSE2 lacks; chosen per call rather than by an ifunc (target_clones), whose
 * resolver runs before a sanitizer's runtime is up. */
#define MADD_ROW_BODY                                                                                        \
    for (int i = 0; i < n; i++)                                                                              \
        acc[i] += row[i] * k;

__attribute__((target("avx2"))) static void madd_row_avx2(int32_t *restrict acc, const uint8_t *restrict row,
                                                          int32_t k, int n)
{
    MADD_ROW_BODY
}

static void madd_row(int32_t *restrict acc, const uint8_t *restrict row, int32_t k, int n)
{
    if (__builtin_cpu_supports("avx2")) {
        madd_row_avx2(acc, row, k, n);
        return;
    }
    MADD_ROW_BODY
}

/* Resamples the crop window of the (tw x th) resize of rgb (w x h) into crop (side x side RGB). */
static int resample_crop(const uint8_t *rgb, int w, int h, int tw, int th, int side, uint8_t *crop)
{
    coeffs_t hc = {0}, vc = {0};
    uint8_t *tmp = NULL;
    int32_t *acc = NULL;
    int rc = -1;
    if (coeffs_make(w, tw, &hc) != 0 || coeffs_make(h, th, &vc) != 0)
        goto out;
    int x0 = crop_offset(tw, side), y0 = crop_offset(th, side);
    /* Source rows the crop's vertical pass reads, and the horizontal pass over them. */
    int r0 = vc.first[y0], r1 = vc.first[y0 + side - 1] + vc.count[y0 + side - 1];
    if (!(tmp = malloc((size_t)(r1 - r0) * side * 3)))
        goto out;
    for (int y = r0; y < r1; y++) {
        const uint8_t *src = rgb + (size_t)y * w * 3;
        uint8_t *dst = tmp + (size_t)(y - r0) * side * 3;
        for (int xx = 0; xx < side; xx++) {
            const int32_t *k = hc.k + (size_t)(x0 + xx) * hc.ksize;
            const uint8_t *p = src + (size_t)hc.first[x0 + xx] * 3;
            int32_t s0 = 1 << (PRECISION_BITS - 1), s1 = s0, s2 = s0;
            for (int x = 0; x < hc.count[x0 + xx]; x++) {
                s0 += p[3 * x] * k[x];
                s1 += p[3 * x + 1] * k[x];
                s2 += p[3 * x + 2] * k[x];
            }
            dst[3 * xx] = clip8(s0);
            dst[3 * xx + 1] = clip8(s1);
            dst[3 * xx + 2] = clip8(s2);
        }
    }
    /* The vertical pass row by row, so the inner loop runs along a row. */
    int n = side * 3;
    if (!(acc = malloc((size_t)n * sizeof *acc)))
        goto out;
    for (int yy = 0; yy < side; yy++) {
        const int32_t *k = vc.k + (size_t)(y0 + yy) * vc.ksize;
        const uint8_t *src = tmp + (size_t)(vc.first[y0 + yy] - r0) * n;
        for (int xx = 0; xx < n; xx++)
            acc[xx] = 1 << (PRECISION_BITS - 1);
        for (int y = 0; y < vc.count[y0 + yy]; y++)
            madd_row(acc, src + (size_t)y * n, k[y], n);
        uint8_t *dst = crop + (size_t)yy * n;
        for (int xx = 0; xx < n; xx++)
            dst[xx] = clip8(acc[xx]);
    }
    rc = 0;
out:
    free(tmp);
    free(acc);
    coeffs_free(&hc);
    coeffs_free(&vc);
    return rc;
}

int embed_jpeg_tensor(const void *data, size_t len, const embed_image_opts_t *opts, float *out)
{
    struct jpeg_decompress_struct c;
    jerr_t jerr;
    /* Freed on every exit, including a jump from libjpeg: volatile keeps them across it. */
    uint8_t *volatile rgb = NULL;
    uint8_t *volatile crop = NULL;
    volatile int taken = 0;
    if (len > opts->max_file_bytes || len > ULONG_MAX)
        return 0;
    c.err = jpeg_std_error(&jerr.pub);
    jerr.pub.error_exit = on_error;
    jerr.pub.emit_message = on_message;
    jerr.pub.output_message = on_output;
    if (setjmp(jerr.jump)) {
        jpeg_destroy_decompress(&c);
        free(rgb);
        free(crop);
        return 0;
    }
    jpeg_create_decompress(&c);
    jpeg_mem_src(&c, data, (unsigned long)len);
    jpeg_save_markers(&c, JPEG_APP0 + 1, MARKER_PEEK);
    jpeg_save_markers(&c, JPEG_APP0 + 2, MARKER_PEEK);
    jpeg_read_header(&c, TRUE);
    uint64_t w = c.image_width, h = c.image_height;
    if (needs_general_path(&c) || w == 0 || h == 0 || w * h > opts->max_pixels ||
        w * h > EMBED_JPEG_FAST_MAX_PIXELS)
        goto done;
    /* torchvision's Resize(short side): the long side becomes floor(long * short / short). */
    uint64_t s = opts->resize_short, tw = w <= h ? s : w * s / h, th = w <= h ? h * s / w : s;
    if (tw > (uint64_t)EMBED_IMAGE_MAX_SIDE * 16 || th > (uint64_t)EMBED_IMAGE_MAX_SIDE * 16)
        goto done;
    c.out_color_space = JCS_RGB;
    jpeg_start_decompress(&c);
    if (c.output_components != 3 || !(rgb = malloc((size_t)c.output_width * 3 * c.output_height)))
        goto done;
    decode(&c, rgb);
    jpeg_finish_decompress(&c);
    int side = (int)opts->crop;
    if (!(crop = malloc((size_t)side * side * 3)) ||
        resample_crop(rgb, (int)w, (int)h, (int)tw, (int)th, side, crop) != 0)
        goto done;
    size_t plane = (size_t)side * side;
    for (int ch = 0; ch < 3; ch++) {
        float scale = 1.0f / (255.0f * opts->std[ch]), bias = opts->mean[ch] / opts->std[ch];
        float *dst = out + (size_t)ch * plane;
        for (size_t i = 0; i < plane; i++)
            dst[i] = (float)crop[3 * i + ch] * scale - bias;
    }
    taken = 1;
done:
    jpeg_destroy_decompress(&c);
    free(rgb);
    free(crop);
    return taken;
}
