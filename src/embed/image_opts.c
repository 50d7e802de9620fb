/* Image pipeline options: defaults and the parser for a model's "preprocessing" text. */
#include "embed/embed.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const float imagenet_mean[3] = {0.485f, 0.456f, 0.406f};
static const float imagenet_std[3] = {0.229f, 0.224f, 0.225f};

void embed_image_opts_init(embed_image_opts_t *opts)
{
    memset(opts, 0, sizeof *opts);
    opts->resize_short = EMBED_IMAGE_RESIZE_SHORT;
    opts->crop = EMBED_IMAGE_CROP;
    memcpy(opts->mean, imagenet_mean, sizeof opts->mean);
    memcpy(opts->std, imagenet_std, sizeof opts->std);
    opts->max_file_bytes = EMBED_IMAGE_MAX_FILE_BYTES;
    opts->max_pixels = EMBED_IMAGE_MAX_PIXELS;
}

size_t embed_image_tensor_len(const embed_image_opts_t *opts)
{
    return (size_t)3 * opts->crop * opts->crop;
}

/* Case-insensitive search; the metadata text is written by people and converters. */
static const char *find_ci(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (; *hay; hay++)
        if (strncasecmp(hay, needle, n) == 0)
            return hay;
    return NULL;
}

static int skip_blank_eq(const char **p)
{
    const char *s = *p;
    while (*s == ' ' || *s == '\t')
        s++;
    if (*s != '=' && *s != ':')
        return -1;
    s++;
    while (*s == ' ' || *s == '\t' || *s == '[' || *s == '(')
        s++;
    *p = s;
    return 0;
}

/* Parses "a, b, c" (optionally bracketed) after a "key=" into three finite floats. */
static int parse_triple(const char *desc, const char *key, float out[3])
{
    const char *p = find_ci(desc, key);
    while (p && p != desc && (isalnum((unsigned char)p[-1]) || p[-1] == '_'))
        p = find_ci(p + 1, key);
    if (!p)
        return 1;
    p += strlen(key);
    if (skip_blank_eq(&p) != 0)
        return -1;
    for (int i = 0; i < 3; i++) {
        char *end;
        double v = strtod(p, &end);
        if (end == p || !(v > -1e6 && v < 1e6))
            return -1;
        out[i] = (float)v;
        p = end;
        while (*p == ' ' || *p == '\t')
            p++;
        if (i < 2) {
            if (*p != ',')
                return -1;
            p++;
        }
    }
    return 0;
}

static void parse_sizes(const char *desc, embed_image_opts_t *o)
{
    const char *p = find_ci(desc, "shorter side to ");
    if (p) {
        long v = strtol(p + strlen("shorter side to "), NULL, 10);
        if (v > 0 && v <= (long)EMBED_IMAGE_MAX_SIDE)
            o->resize_short = (uint32_t)v;
    }
    p = find_ci(desc, "crop ");
    if (p) {
        char *end;
        long v = strtol(p + strlen("crop "), &end, 10);
        if (v > 0 && v <= (long)EMBED_IMAGE_MAX_SIDE && (*end == 'x' || *end == 'X') &&
            strtol(end + 1, NULL, 10) == v)
            o->crop = (uint32_t)v;
    }
}

int embed_image_opts_parse_preprocessing(embed_image_opts_t *opts, const char *desc, char *err, size_t errlen)
{
    if (!opts || !desc) {
        snprintf(err, errlen, "preprocessing: no description");
        return EMBED_IMAGE_EINVAL;
    }
    embed_image_opts_t o = *opts;
    float mean[3], std[3];
    int rm = parse_triple(desc, "mean", mean);
    int rs = parse_triple(desc, "std", std);
    if (rm < 0 || rs < 0 || rm != rs) {
        snprintf(err, errlen, "preprocessing: malformed mean/std in \"%.80s\"", desc);
        return EMBED_IMAGE_EINVAL;
    }
    if (rm == 0) {
        /* Values above 1 are on the 0..255 scale (Caffe/Keras style); store 0..1. */
        int scale255 = 0;
        for (int c = 0; c < 3; c++)
            if (mean[c] > 1.0f || std[c] > 1.0f)
                scale255 = 1;
        for (int c = 0; c < 3; c++) {
            if (scale255) {
                mean[c] /= 255.0f;
                std[c] /= 255.0f;
            }
            if (!(std[c] > 0.0f)) {
                snprintf(err, errlen, "preprocessing: std must be positive in \"%.80s\"", desc);
                return EMBED_IMAGE_EINVAL;
            }
        }
        memcpy(o.mean, mean, sizeof o.mean);
        memcpy(o.std, std, sizeof o.std);
    } else if (find_ci(desc, "/127.5 - 1") || find_ci(desc, "/127.5-1")) {
        /* x/127.5 - 1 == (x/255 - 0.5) / 0.5 */
        for (int c = 0; c < 3; c++) {
            o.mean[c] = 0.5f;
            o.std[c] = 0.5f;
        }
    } else if (find_ci(desc, "imagenet")) {
        memcpy(o.mean, imagenet_mean, sizeof o.mean);
        memcpy(o.std, imagenet_std, sizeof o.std);
    } else {
        snprintf(err, errlen, "preprocessing: no known normalisation in \"%.80s\"", desc);
        return EMBED_IMAGE_EINVAL;
    }
    parse_sizes(desc, &o);
    if (o.crop > o.resize_short) {
        snprintf(err, errlen, "preprocessing: crop %u larger than resize %u", o.crop, o.resize_short);
        return EMBED_IMAGE_EINVAL;
    }
    *opts = o;
    return 0;
}
