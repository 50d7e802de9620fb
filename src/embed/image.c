/* Image pipeline on libvips: bytes -> oriented sRGB pixels -> network input tensor.
 * The design (order of steps, caps, threading) is documented in embed.h. */
#include "embed/embed.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <vips/vips.h>

enum image_format { FMT_UNKNOWN, FMT_JPEG, FMT_PNG, FMT_WEBP, FMT_GIF, FMT_TIFF };

static const char *const format_names[] = {"unknown", "JPEG", "PNG", "WebP", "GIF", "TIFF"};

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
/* Written once inside init_once, read-only afterwards. */
static int init_result = EMBED_IMAGE_EINIT;
static const char *init_argv0;
static int init_concurrency;

static void drop_log(const gchar *domain, GLogLevelFlags level, const gchar *msg, gpointer ud)
{
    (void)domain, (void)level, (void)msg, (void)ud;
}

static void init_vips(void)
{
    if (VIPS_INIT(init_argv0 ? init_argv0 : "embed") != 0)
        return;
    /* A corrupt image already fails with its reason in err; libvips would also print
     * "error in tile" warnings to stderr, once per failed tile. */
    g_log_set_handler("VIPS", G_LOG_LEVEL_WARNING, drop_log, NULL);
    vips_cache_set_max(0);
    if (init_concurrency > 0)
        vips_concurrency_set(init_concurrency);
    init_result = 0;
}

int embed_image_global_init(const char *argv0, int concurrency, char *err, size_t errlen)
{
    init_argv0 = argv0;
    init_concurrency = concurrency;
    pthread_once(&init_once, init_vips);
    if (init_result != 0)
        snprintf(err, errlen, "libvips failed to start: %s", vips_error_buffer());
    return init_result;
}

/* The libvips error text, trimmed to its last line and cleared so that the next failure in
 * this process does not repeat it. */
static void vips_err(char *err, size_t errlen, const char *name, const char *what)
{
    char *msg = vips_error_buffer_copy();
    size_t n = msg ? strlen(msg) : 0;
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
        msg[--n] = '\0';
    snprintf(err, errlen, "%s: %s%s%s", name, what, n ? ": " : "", n ? msg : "");
    g_free(msg);
}

static enum image_format sniff(const unsigned char *p, size_t n)
{
    if (n >= 3 && p[0] == 0xFF && p[1] == 0xD8 && p[2] == 0xFF)
        return FMT_JPEG;
    if (n >= 8 && memcmp(p, "\x89PNG\r\n\x1a\n", 8) == 0)
        return FMT_PNG;
    if (n >= 12 && memcmp(p, "RIFF", 4) == 0 && memcmp(p + 8, "WEBP", 4) == 0)
        return FMT_WEBP;
    if (n >= 6 && (memcmp(p, "GIF87a", 6) == 0 || memcmp(p, "GIF89a", 6) == 0))
        return FMT_GIF;
    if (n >= 4 && (memcmp(p, "II*\0", 4) == 0 || memcmp(p, "MM\0*", 4) == 0 || memcmp(p, "II+\0", 4) == 0 ||
                   memcmp(p, "MM\0+", 4) == 0))
        return FMT_TIFF;
    return FMT_UNKNOWN;
}

/* Opens the image lazily: only the header is parsed here, no pixel is decoded. */
static int load_header(const void *data, size_t len, const embed_image_opts_t *opts, const char *name,
                       VipsImage **out, char *err, size_t errlen)
{
    if (len > opts->max_file_bytes) {
        snprintf(err, errlen, "%s: too large: %zu bytes (limit %zu)", name, len, opts->max_file_bytes);
        return EMBED_IMAGE_ETOOLARGE;
    }
    enum image_format fmt = sniff(data, len);
    VipsImage *img = NULL;
    int rc;
    switch (fmt) {
    case FMT_JPEG:
        rc = vips_jpegload_buffer((void *)data, len, &img, "access", VIPS_ACCESS_SEQUENTIAL, "fail_on",
                                  VIPS_FAIL_ON_ERROR, NULL);
        break;
    case FMT_PNG:
        rc = vips_pngload_buffer((void *)data, len, &img, "access", VIPS_ACCESS_SEQUENTIAL, "fail_on",
                                 VIPS_FAIL_ON_ERROR, NULL);
        break;
    case FMT_WEBP:
        rc = vips_webpload_buffer((void *)data, len, &img, "access", VIPS_ACCESS_SEQUENTIAL, "fail_on",
                                  VIPS_FAIL_ON_ERROR, NULL);
        break;
    case FMT_GIF:
        rc = vips_gifload_buffer((void *)data, len, &img, "access", VIPS_ACCESS_SEQUENTIAL, "fail_on",
                                 VIPS_FAIL_ON_ERROR, "n", 1, "page", 0, NULL);
        break;
    case FMT_TIFF:
        rc = vips_tiffload_buffer((void *)data, len, &img, "access", VIPS_ACCESS_SEQUENTIAL, "fail_on",
                                  VIPS_FAIL_ON_ERROR, "n", 1, "page", 0, NULL);
        break;
    default:
        snprintf(err, errlen, "%s: unsupported image format (want JPEG, PNG, WebP, GIF or TIFF)", name);
        return EMBED_IMAGE_EFORMAT;
    }
    if (rc != 0) {
        char what[64];
        snprintf(what, sizeof what, "cannot read %s header", format_names[fmt]);
        vips_err(err, errlen, name, what);
        return EMBED_IMAGE_ECORRUPT;
    }
    uint64_t w = (uint64_t)vips_image_get_width(img), h = (uint64_t)vips_image_get_height(img);
    if (w == 0 || h == 0) {
        snprintf(err, errlen, "%s: empty image", name);
        g_object_unref(img);
        return EMBED_IMAGE_ECORRUPT;
    }
    if (w * h > opts->max_pixels) {
        snprintf(err, errlen, "%s: too large: %llux%llu pixels (limit %llu)", name, (unsigned long long)w,
                 (unsigned long long)h, (unsigned long long)opts->max_pixels);
        g_object_unref(img);
        return EMBED_IMAGE_ETOOLARGE;
    }
    *out = img;
    return 0;
}

/* Any input interpretation -> 3-band 8-bit sRGB with alpha flattened onto white. */
static int to_srgb8(VipsImage *in, VipsImage **out)
{
    VipsImage *t[4] = {NULL, NULL, NULL, NULL};
    int rc = -1;
    VipsImage *cur = in;
    /* A broken embedded profile should not reject an otherwise good photo: fall back to the
     * plain conversion, which treats the pixels as sRGB (or grey / CMYK) already. */
    if (vips_image_get_typeof(cur, VIPS_META_ICC_NAME)) {
        if (vips_icc_transform(cur, &t[0], "srgb", "embedded", TRUE, "depth", 8, NULL) == 0)
            cur = t[0];
        else
            vips_error_clear();
    }
    if (vips_colourspace(cur, &t[1], VIPS_INTERPRETATION_sRGB, NULL) != 0)
        goto fail;
    cur = t[1];
    if (vips_image_hasalpha(cur)) {
        VipsArrayDouble *white = vips_array_double_newv(3, 255.0, 255.0, 255.0);
        int f = vips_flatten(cur, &t[2], "background", white, "max_alpha", 255.0, NULL);
        vips_area_unref(VIPS_AREA(white));
        if (f != 0)
            goto fail;
        cur = t[2];
    }
    if (vips_image_get_bands(cur) > 3) {
        if (vips_extract_band(cur, &t[3], 0, "n", 3, NULL) != 0)
            goto fail;
        cur = t[3];
    }
    if (vips_cast_uchar(cur, out, NULL) != 0)
        goto fail;
    rc = 0;
fail:
    for (int i = 0; i < 4; i++)
        if (t[i])
            g_object_unref(t[i]);
    return rc;
}

/* True when the EXIF orientation transposes width and height (orientations 5..8). */
static int orientation_swaps(VipsImage *img)
{
    int o = 1;
    if (vips_image_get_typeof(img, VIPS_META_ORIENTATION) &&
        vips_image_get_int(img, VIPS_META_ORIENTATION, &o) != 0)
        o = 1;
    return o >= 5 && o <= 8;
}

/* Resizes to exactly tw x th (pre-rotation axes) with the antialiasing triangle kernel, then
 * renders to memory and applies the EXIF orientation. gap=0 makes libvips use the kernel for
 * the whole reduction instead of a box pre-shrink, so the result is PIL's antialiased bilinear. */
static int resize_orient(VipsImage *rgb, uint32_t tw, uint32_t th, VipsImage **out)
{
    VipsImage *t[3] = {NULL, NULL, NULL};
    int rc = -1;
    double hs = (double)tw / vips_image_get_width(rgb), vs = (double)th / vips_image_get_height(rgb);
    if (vips_resize(rgb, &t[0], hs, "vscale", vs, "kernel", VIPS_KERNEL_LINEAR, "gap", 0.0, NULL) != 0)
        goto fail;
    /* Rounding in libvips can leave a pixel more; cut to the exact target. */
    if ((uint32_t)vips_image_get_width(t[0]) < tw || (uint32_t)vips_image_get_height(t[0]) < th) {
        vips_error("embed", "resize produced %dx%d, want %ux%u", vips_image_get_width(t[0]),
                   vips_image_get_height(t[0]), tw, th);
        goto fail;
    }
    if (vips_crop(t[0], &t[1], 0, 0, (int)tw, (int)th, NULL) != 0)
        goto fail;
    t[2] = vips_image_copy_memory(t[1]);
    if (!t[2])
        goto fail;
    if (vips_autorot(t[2], out, NULL) != 0)
        goto fail;
    rc = 0;
fail:
    for (int i = 0; i < 3; i++)
        if (t[i])
            g_object_unref(t[i]);
    return rc;
}

/* torchvision's CenterCrop offset: int(round((size - crop) / 2)) with Python's round half to
 * even. */
static int crop_offset(int size, int crop)
{
    int d = size - crop;
    int half = d / 2;
    if (d % 2 != 0 && half % 2 != 0)
        half++;
    return half;
}

static int check_opts(const embed_image_opts_t *o, const char *name, char *err, size_t errlen)
{
    if (o->crop < 1 || o->resize_short < o->crop || o->resize_short > EMBED_IMAGE_MAX_SIDE) {
        snprintf(err, errlen, "%s: bad sizes: resize %u, crop %u", name, o->resize_short, o->crop);
        return EMBED_IMAGE_EINVAL;
    }
    for (int c = 0; c < 3; c++)
        if (!(o->std[c] > 0.0f)) {
            snprintf(err, errlen, "%s: std must be positive", name);
            return EMBED_IMAGE_EINVAL;
        }
    return 0;
}

static int tensor_from(const void *data, size_t len, const embed_image_opts_t *opts, const char *name,
                       float *out, char *err, size_t errlen)
{
    if (init_result != 0) {
        snprintf(err, errlen, "%s: embed_image_global_init() was not called", name);
        return EMBED_IMAGE_EINIT;
    }
    if (!data || !opts || !out) {
        snprintf(err, errlen, "%s: missing argument", name);
        return EMBED_IMAGE_EINVAL;
    }
    int rc = check_opts(opts, name, err, errlen);
    if (rc != 0)
        return rc;
    VipsImage *img = NULL, *rgb = NULL, *small = NULL, *cropped = NULL;
    unsigned char *pix = NULL;
    rc = load_header(data, len, opts, name, &img, err, errlen);
    if (rc != 0)
        return rc;
    if (to_srgb8(img, &rgb) != 0) {
        vips_err(err, errlen, name, "colour conversion failed");
        rc = EMBED_IMAGE_ECORRUPT;
        goto fail;
    }
    /* Target sizes in the displayed (oriented) frame, as torchvision sees a rotated PIL image. */
    uint64_t ow = (uint64_t)vips_image_get_width(rgb), oh = (uint64_t)vips_image_get_height(rgb);
    int swap = orientation_swaps(img);
    if (swap) {
        uint64_t tmp = ow;
        ow = oh;
        oh = tmp;
    }
    uint64_t s = opts->resize_short, tw, th;
    if (ow <= oh) {
        tw = s;
        th = oh * s / ow;
    } else {
        th = s;
        tw = ow * s / oh;
    }
    if (tw > (uint64_t)EMBED_IMAGE_MAX_SIDE * 16 || th > (uint64_t)EMBED_IMAGE_MAX_SIDE * 16) {
        snprintf(err, errlen, "%s: too large: aspect ratio %llux%llu", name, (unsigned long long)ow,
                 (unsigned long long)oh);
        rc = EMBED_IMAGE_ETOOLARGE;
        goto fail;
    }
    if (resize_orient(rgb, (uint32_t)(swap ? th : tw), (uint32_t)(swap ? tw : th), &small) != 0) {
        vips_err(err, errlen, name, "decode failed");
        rc = EMBED_IMAGE_ECORRUPT;
        goto fail;
    }
    int crop = (int)opts->crop, w = vips_image_get_width(small), h = vips_image_get_height(small);
    if (vips_crop(small, &cropped, crop_offset(w, crop), crop_offset(h, crop), crop, crop, NULL) != 0) {
        vips_err(err, errlen, name, "crop failed");
        rc = EMBED_IMAGE_ECORRUPT;
        goto fail;
    }
    size_t plen = 0;
    pix = vips_image_write_to_memory(cropped, &plen);
    if (!pix || plen != (size_t)crop * crop * 3) {
        vips_err(err, errlen, name, "render failed");
        rc = EMBED_IMAGE_ECORRUPT;
        goto fail;
    }
    size_t plane = (size_t)crop * crop;
    for (int c = 0; c < 3; c++) {
        float scale = 1.0f / (255.0f * opts->std[c]), bias = opts->mean[c] / opts->std[c];
        float *dst = out + (size_t)c * plane;
        const unsigned char *src = pix + c;
        for (size_t i = 0; i < plane; i++)
            dst[i] = (float)src[3 * i] * scale - bias;
    }
    rc = 0;
fail:
    g_free(pix);
    if (cropped)
        g_object_unref(cropped);
    if (small)
        g_object_unref(small);
    if (rgb)
        g_object_unref(rgb);
    g_object_unref(img);
    return rc;
}

static int rgb_from(const void *data, size_t len, const embed_image_opts_t *opts, const char *name,
                    uint32_t max_side, uint8_t **rgb_out, uint32_t *width, uint32_t *height, char *err,
                    size_t errlen)
{
    if (init_result != 0) {
        snprintf(err, errlen, "%s: embed_image_global_init() was not called", name);
        return EMBED_IMAGE_EINIT;
    }
    if (!data || !rgb_out || !width || !height || max_side < 1 || max_side > EMBED_IMAGE_MAX_SIDE) {
        snprintf(err, errlen, "%s: bad argument", name);
        return EMBED_IMAGE_EINVAL;
    }
    embed_image_opts_t defaults;
    if (!opts) {
        embed_image_opts_init(&defaults);
        opts = &defaults;
    }
    VipsImage *img = NULL, *rgb = NULL, *small = NULL;
    unsigned char *pix = NULL;
    int rc = load_header(data, len, opts, name, &img, err, errlen);
    if (rc != 0)
        return rc;
    if (to_srgb8(img, &rgb) != 0) {
        vips_err(err, errlen, name, "colour conversion failed");
        rc = EMBED_IMAGE_ECORRUPT;
        goto fail;
    }
    uint64_t w = (uint64_t)vips_image_get_width(rgb), h = (uint64_t)vips_image_get_height(rgb);
    uint64_t longer = w > h ? w : h, tw = w, th = h;
    if (longer > max_side) {
        tw = w * max_side / longer;
        th = h * max_side / longer;
        if (tw < 1)
            tw = 1;
        if (th < 1)
            th = 1;
    }
    if (resize_orient(rgb, (uint32_t)tw, (uint32_t)th, &small) != 0) {
        vips_err(err, errlen, name, "decode failed");
        rc = EMBED_IMAGE_ECORRUPT;
        goto fail;
    }
    size_t plen = 0;
    pix = vips_image_write_to_memory(small, &plen);
    uint32_t ow = (uint32_t)vips_image_get_width(small), oh = (uint32_t)vips_image_get_height(small);
    if (!pix || plen != (size_t)ow * oh * 3) {
        vips_err(err, errlen, name, "render failed");
        rc = EMBED_IMAGE_ECORRUPT;
        goto fail;
    }
    uint8_t *copy = malloc(plen);
    if (!copy) {
        snprintf(err, errlen, "%s: out of memory", name);
        rc = EMBED_IMAGE_ENOMEM;
        goto fail;
    }
    memcpy(copy, pix, plen);
    *rgb_out = copy;
    *width = ow;
    *height = oh;
    rc = 0;
fail:
    g_free(pix);
    if (small)
        g_object_unref(small);
    if (rgb)
        g_object_unref(rgb);
    g_object_unref(img);
    return rc;
}

/* Reads a regular file whole, refusing it before reading when it is over the cap. */
static int read_file(const char *path, size_t cap, unsigned char **data, size_t *len, char *err,
                     size_t errlen)
{
    unsigned char *buf = NULL;
    int rc = EMBED_IMAGE_EIO;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return EMBED_IMAGE_EIO;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        snprintf(err, errlen, "%s: cannot stat: %s", path, strerror(errno));
        goto fail;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s: not a regular file", path);
        goto fail;
    }
    if ((uint64_t)st.st_size > cap) {
        snprintf(err, errlen, "%s: too large: %lld bytes (limit %zu)", path, (long long)st.st_size, cap);
        rc = EMBED_IMAGE_ETOOLARGE;
        goto fail;
    }
    size_t want = (size_t)st.st_size, got = 0;
    buf = malloc(want ? want : 1);
    if (!buf) {
        snprintf(err, errlen, "%s: out of memory", path);
        rc = EMBED_IMAGE_ENOMEM;
        goto fail;
    }
    while (got < want) {
        ssize_t n = read(fd, buf + got, want - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            snprintf(err, errlen, "%s: read failed: %s", path, n < 0 ? strerror(errno) : "file shrank");
            goto fail;
        }
        got += (size_t)n;
    }
    close(fd);
    *data = buf;
    *len = got;
    return 0;
fail:
    free(buf);
    close(fd);
    return rc;
}

int embed_image_tensor_buffer(const void *data, size_t len, const embed_image_opts_t *opts, float *out,
                              char *err, size_t errlen)
{
    return tensor_from(data, len, opts, "image", out, err, errlen);
}

int embed_image_tensor_file(const char *path, const embed_image_opts_t *opts, float *out, char *err,
                            size_t errlen)
{
    if (!path || !opts) {
        snprintf(err, errlen, "image: missing argument");
        return EMBED_IMAGE_EINVAL;
    }
    unsigned char *data = NULL;
    size_t len = 0;
    int rc = read_file(path, opts->max_file_bytes, &data, &len, err, errlen);
    if (rc != 0)
        return rc;
    rc = tensor_from(data, len, opts, path, out, err, errlen);
    free(data);
    return rc;
}

int embed_image_rgb_buffer(const void *data, size_t len, const embed_image_opts_t *opts, uint32_t max_side,
                           uint8_t **rgb, uint32_t *width, uint32_t *height, char *err, size_t errlen)
{
    return rgb_from(data, len, opts, "image", max_side, rgb, width, height, err, errlen);
}

int embed_image_rgb_file(const char *path, const embed_image_opts_t *opts, uint32_t max_side, uint8_t **rgb,
                         uint32_t *width, uint32_t *height, char *err, size_t errlen)
{
    if (!path) {
        snprintf(err, errlen, "image: missing argument");
        return EMBED_IMAGE_EINVAL;
    }
    size_t cap = opts ? opts->max_file_bytes : EMBED_IMAGE_MAX_FILE_BYTES;
    unsigned char *data = NULL;
    size_t len = 0;
    int rc = read_file(path, cap, &data, &len, err, errlen);
    if (rc != 0)
        return rc;
    rc = rgb_from(data, len, opts, path, max_side, rgb, width, height, err, errlen);
    free(data);
    return rc;
}
