/* Dominant colours of a product photo: sRGB -> CIELAB, drop a plain background found on the
 * border, k-means in Lab on what is left, name each centre from a small palette by CIEDE2000. */
#include "lookalike/lookalike.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NAMES 13
#define SAMPLE_MAX 16384
#define KMEANS_ITERS 25

static const struct {
    const char *en, *vi;
} names[NAMES] = {
    {"black", "đen"},      {"white", "trắng"}, {"grey", "xám"},      {"red", "đỏ"},
    {"orange", "cam"},     {"yellow", "vàng"}, {"green", "xanh lá"}, {"blue", "xanh dương"},
    {"navy", "xanh navy"}, {"purple", "tím"},  {"pink", "hồng"},     {"brown", "nâu"},
    {"beige", "be"},
};

/* Several reference shades per name, since one point per name leaves light and dark shades of
 * a hue closer to grey or brown than to their own name. */
static const struct {
    uint8_t name, r, g, b;
} refs[] = {
    {0, 0, 0, 0},       {0, 30, 30, 30},     {1, 255, 255, 255},  {1, 242, 242, 242},  {2, 128, 128, 128},
    {2, 90, 90, 90},    {2, 190, 190, 190},  {2, 60, 60, 60},     {3, 200, 30, 30},    {3, 150, 20, 30},
    {3, 230, 50, 50},   {4, 255, 140, 0},    {4, 230, 110, 40},   {5, 255, 215, 0},    {5, 240, 230, 80},
    {6, 34, 139, 34},   {6, 100, 180, 80},   {6, 30, 80, 40},     {6, 85, 107, 47},    {7, 30, 100, 200},
    {7, 100, 160, 220}, {7, 60, 80, 170},    {8, 20, 30, 80},     {8, 30, 40, 100},    {9, 128, 0, 128},
    {9, 120, 70, 160},  {10, 255, 170, 190}, {10, 230, 80, 150},  {10, 200, 130, 140}, {11, 139, 69, 19},
    {11, 100, 60, 40},  {11, 160, 110, 70},  {12, 245, 245, 220}, {12, 220, 200, 160},
};

static float srgb_linear(float c)
{
    return c <= 0.04045f ? c / 12.92f : powf((c + 0.055f) / 1.055f, 2.4f);
}

static float lab_f(float t)
{
    const float d = 6.0f / 29.0f;
    return t > d * d * d ? cbrtf(t) : t / (3.0f * d * d) + 4.0f / 29.0f;
}

static void linear_to_lab(float r, float g, float b, float lab[3])
{
    float x = (0.4124564f * r + 0.3575761f * g + 0.1804375f * b) / 0.95047f;
    float y = 0.2126729f * r + 0.7151522f * g + 0.0721750f * b;
    float z = (0.0193339f * r + 0.1191920f * g + 0.9503041f * b) / 1.08883f;
    float fx = lab_f(x), fy = lab_f(y), fz = lab_f(z);
    lab[0] = 116.0f * fy - 16.0f;
    lab[1] = 500.0f * (fx - fy);
    lab[2] = 200.0f * (fy - fz);
}

void lookalike_colour_srgb_to_lab(uint8_t r, uint8_t g, uint8_t b, float lab[3])
{
    linear_to_lab(srgb_linear(r / 255.0f), srgb_linear(g / 255.0f), srgb_linear(b / 255.0f), lab);
}

static float de76_sq(const float a[3], const float b[3])
{
    float d0 = a[0] - b[0], d1 = a[1] - b[1], d2 = a[2] - b[2];
    return d0 * d0 + d1 * d1 + d2 * d2;
}

double lookalike_colour_ciede2000(const float lab1[3], const float lab2[3])
{
    const double pi = 3.14159265358979323846;
    double L1 = lab1[0], a1 = lab1[1], b1 = lab1[2];
    double L2 = lab2[0], a2 = lab2[1], b2 = lab2[2];
    double C1 = sqrt(a1 * a1 + b1 * b1), C2 = sqrt(a2 * a2 + b2 * b2);
    double Cm = (C1 + C2) / 2.0;
    double Cm7 = pow(Cm, 7.0);
    double G = 0.5 * (1.0 - sqrt(Cm7 / (Cm7 + pow(25.0, 7.0))));
    double a1p = (1.0 + G) * a1, a2p = (1.0 + G) * a2;
    double C1p = sqrt(a1p * a1p + b1 * b1), C2p = sqrt(a2p * a2p + b2 * b2);
    double h1p = (b1 == 0.0 && a1p == 0.0) ? 0.0 : atan2(b1, a1p);
    double h2p = (b2 == 0.0 && a2p == 0.0) ? 0.0 : atan2(b2, a2p);
    if (h1p < 0)
        h1p += 2 * pi;
    if (h2p < 0)
        h2p += 2 * pi;
    double dLp = L2 - L1, dCp = C2p - C1p, dhp;
    if (C1p * C2p == 0.0)
        dhp = 0.0;
    else if (fabs(h2p - h1p) <= pi)
        dhp = h2p - h1p;
    else if (h2p - h1p > pi)
        dhp = h2p - h1p - 2 * pi;
    else
        dhp = h2p - h1p + 2 * pi;
    double dHp = 2.0 * sqrt(C1p * C2p) * sin(dhp / 2.0);
    double Lpm = (L1 + L2) / 2.0, Cpm = (C1p + C2p) / 2.0, hpm;
    if (C1p * C2p == 0.0)
        hpm = h1p + h2p;
    else if (fabs(h1p - h2p) <= pi)
        hpm = (h1p + h2p) / 2.0;
    else if (h1p + h2p < 2 * pi)
        hpm = (h1p + h2p + 2 * pi) / 2.0;
    else
        hpm = (h1p + h2p - 2 * pi) / 2.0;
    double T = 1.0 - 0.17 * cos(hpm - pi / 6.0) + 0.24 * cos(2.0 * hpm) + 0.32 * cos(3.0 * hpm + pi / 30.0) -
               0.20 * cos(4.0 * hpm - 63.0 * pi / 180.0);
    double dtheta = (30.0 * pi / 180.0) * exp(-pow((hpm * 180.0 / pi - 275.0) / 25.0, 2.0));
    double Cpm7 = pow(Cpm, 7.0);
    double Rc = 2.0 * sqrt(Cpm7 / (Cpm7 + pow(25.0, 7.0)));
    double Sl = 1.0 + 0.015 * (Lpm - 50.0) * (Lpm - 50.0) / sqrt(20.0 + (Lpm - 50.0) * (Lpm - 50.0));
    double Sc = 1.0 + 0.045 * Cpm, Sh = 1.0 + 0.015 * Cpm * T;
    double Rt = -sin(2.0 * dtheta) * Rc;
    double tl = dLp / Sl, tc = dCp / Sc, th = dHp / Sh;
    return sqrt(tl * tl + tc * tc + th * th + Rt * tc * th);
}

int lookalike_colour_nearest(const float lab[3])
{
    double best = INFINITY;
    int name = 0;
    for (size_t i = 0; i < sizeof refs / sizeof refs[0]; i++) {
        float ref[3];
        lookalike_colour_srgb_to_lab(refs[i].r, refs[i].g, refs[i].b, ref);
        double d = lookalike_colour_ciede2000(lab, ref);
        if (d < best) {
            best = d;
            name = refs[i].name;
        }
    }
    return name;
}

const char *lookalike_colour_name(int index, int vietnamese)
{
    if (index < 0 || index >= NAMES)
        return NULL;
    return vietnamese ? names[index].vi : names[index].en;
}

int lookalike_colour_lookup(const char *s)
{
    size_t len = strlen(s);
    char a[64], b[64];
    if (len >= sizeof a || lookalike_text_fold(s, len, a, sizeof a, NULL, NULL, 0) != 0)
        return -1;
    for (int i = 0; i < NAMES; i++) {
        if (strcmp(a, names[i].en) == 0)
            return i;
        if (lookalike_text_fold(names[i].vi, strlen(names[i].vi), b, sizeof b, NULL, NULL, 0) == 0 &&
            strcmp(a, b) == 0)
            return i;
    }
    if (strcmp(a, "gray") == 0)
        return 2;
    return -1;
}

/* xorshift64*: the fixed seed makes k-means give the same answer for the same photo. */
static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ull;
}

typedef struct {
    float c[LOOKALIKE_COLOUR_K_MAX][3];
    uint32_t count[LOOKALIKE_COLOUR_K_MAX];
    int k;
} clusters_t;

static void kmeans(const float (*px)[3], uint32_t n, int k, uint64_t seed, clusters_t *cl, uint8_t *assign)
{
    uint64_t rng = seed ? seed : 0x9E3779B97F4A7C15ull;
    float *dist = malloc(n * sizeof *dist);
    /* k-means++ seeding; without scratch memory fall back to evenly spaced samples. */
    memcpy(cl->c[0], px[rng_next(&rng) % n], sizeof cl->c[0]);
    int have = 1;
    if (dist) {
        for (uint32_t i = 0; i < n; i++)
            dist[i] = de76_sq(px[i], cl->c[0]);
        for (; have < k; have++) {
            double total = 0.0;
            for (uint32_t i = 0; i < n; i++)
                total += dist[i];
            if (total <= 0.0)
                break;
            double r = (double)(rng_next(&rng) >> 11) / 9007199254740992.0 * total;
            uint32_t pick = n - 1;
            for (uint32_t i = 0; i < n; i++) {
                r -= dist[i];
                if (r <= 0.0) {
                    pick = i;
                    break;
                }
            }
            memcpy(cl->c[have], px[pick], sizeof cl->c[0]);
            for (uint32_t i = 0; i < n; i++) {
                float d = de76_sq(px[i], cl->c[have]);
                if (d < dist[i])
                    dist[i] = d;
            }
        }
        free(dist);
    } else {
        for (; have < k; have++)
            memcpy(cl->c[have], px[(uint64_t)n * have / k], sizeof cl->c[0]);
    }
    cl->k = have;
    for (int it = 0; it < KMEANS_ITERS; it++) {
        double sum[LOOKALIKE_COLOUR_K_MAX][3] = {{0}};
        uint32_t cnt[LOOKALIKE_COLOUR_K_MAX] = {0};
        int changed = 0;
        for (uint32_t i = 0; i < n; i++) {
            int best = 0;
            float bd = de76_sq(px[i], cl->c[0]);
            for (int j = 1; j < cl->k; j++) {
                float d = de76_sq(px[i], cl->c[j]);
                if (d < bd) {
                    bd = d;
                    best = j;
                }
            }
            if (it == 0 || assign[i] != best)
                changed = 1;
            assign[i] = (uint8_t)best;
            cnt[best]++;
            for (int c = 0; c < 3; c++)
                sum[best][c] += px[i][c];
        }
        for (int j = 0; j < cl->k; j++) {
            cl->count[j] = cnt[j];
            if (cnt[j])
                for (int c = 0; c < 3; c++)
                    cl->c[j][c] = (float)(sum[j][c] / cnt[j]);
        }
        if (!changed)
            break;
    }
}

void lookalike_colour_opts_default(lookalike_colour_opts_t *o)
{
    o->k = 4;
    o->seed = 1;
    o->background_delta = 6.0f;
    o->background_range = 25.0f;
    o->border_share = 0.25f;
    o->min_share = 0.03f;
}

int lookalike_colours_extract(const uint8_t *rgb, uint32_t w, uint32_t h, const lookalike_colour_opts_t *opts,
                              lookalike_colour_t *out, size_t cap, size_t *nout, char *err, size_t errlen)
{
    lookalike_colour_opts_t o;
    if (opts)
        o = *opts;
    else
        lookalike_colour_opts_default(&o);
    *nout = 0;
    if (w == 0 || h == 0) {
        if (err && errlen)
            snprintf(err, errlen, "colours: empty image (%ux%u)", w, h);
        return LOOKALIKE_EINVAL;
    }
    if ((uint64_t)w * h > LOOKALIKE_COLOUR_PIXELS_MAX) {
        if (err && errlen)
            snprintf(err, errlen, "colours: image too large (%ux%u, at most %u pixels)", w, h,
                     LOOKALIKE_COLOUR_PIXELS_MAX);
        return LOOKALIKE_ETOOLARGE;
    }
    if (o.k < LOOKALIKE_COLOUR_K_MIN || o.k > LOOKALIKE_COLOUR_K_MAX ||
        !(o.background_delta >= 0.0f && o.background_delta <= 100.0f) ||
        !(o.background_range >= 0.0f && o.background_range <= 300.0f) ||
        !(o.border_share >= 0.0f && o.border_share <= 1.0f) ||
        !(o.min_share >= 0.0f && o.min_share <= 1.0f)) {
        if (err && errlen)
            snprintf(err, errlen,
                     "colours: k must be %d..%d, background_delta 0..100, background_range 0..300, "
                     "border_share and min_share in [0, 1]",
                     LOOKALIKE_COLOUR_K_MIN, LOOKALIKE_COLOUR_K_MAX);
        return LOOKALIKE_EINVAL;
    }
    int rc = LOOKALIKE_ENOMEM;
    float lin[256];
    for (int i = 0; i < 256; i++)
        lin[i] = srgb_linear(i / 255.0f);
    /* A grid of at most SAMPLE_MAX cells, each the mean (in linear light) of its block of
     * pixels: enough for shares to within a percent, and the averaging smooths sensor noise and
     * fine texture that would otherwise stop the background flood. */
    uint32_t step = 1;
    while ((uint64_t)((w + step - 1) / step) * ((h + step - 1) / step) > SAMPLE_MAX)
        step++;
    uint32_t sw = (w + step - 1) / step, sh = (h + step - 1) / step, n = sw * sh;
    float(*px)[3] = malloc((size_t)n * sizeof *px);
    float(*fg)[3] = malloc((size_t)n * sizeof *fg);
    uint32_t *queue = malloc((size_t)n * sizeof *queue);
    uint32_t *seed = malloc((size_t)n * sizeof *seed);
    uint32_t *border = malloc((size_t)2 * (sw + sh) * sizeof *border);
    uint8_t *assign = malloc(n);
    if (!px || !fg || !queue || !seed || !border || !assign)
        goto fail;
    for (uint32_t y = 0; y < sh; y++)
        for (uint32_t x = 0; x < sw; x++) {
            float sum[3] = {0, 0, 0};
            uint32_t cnt = 0;
            for (uint32_t yy = y * step; yy < (y + 1) * step && yy < h; yy++)
                for (uint32_t xx = x * step; xx < (x + 1) * step && xx < w; xx++) {
                    const uint8_t *p = rgb + ((size_t)yy * w + xx) * 3;
                    sum[0] += lin[p[0]];
                    sum[1] += lin[p[1]];
                    sum[2] += lin[p[2]];
                    cnt++;
                }
            linear_to_lab(sum[0] / cnt, sum[1] / cnt, sum[2] / cnt, px[(size_t)y * sw + x]);
        }
    /* Background: seeded by the border cells whose colour is common along the border (so a
     * subject touching the edge is no seed), then flooded inward through neighbours that differ
     * little from the cell they are reached from (lighting gradients pass, edges stop it) and
     * stay near their seed's colour (a soft edge cannot leak far into the subject). */
    uint32_t nb = 0;
    for (uint32_t y = 0; y < sh; y++)
        for (uint32_t x = 0; x < sw; x++)
            if (y == 0 || x == 0 || y == sh - 1 || x == sw - 1)
                border[nb++] = y * sw + x;
    const uint32_t unseen = UINT32_MAX;
    for (uint32_t i = 0; i < n; i++)
        seed[i] = unseen;
    float step_sq = o.background_delta * o.background_delta,
          range_sq = o.background_range * o.background_range;
    uint32_t qh = 0, qt = 0;
    /* Compared against at most ~512 border cells, so a very long border stays cheap. */
    uint32_t stride = nb / 512 + 1, nref = (nb + stride - 1) / stride;
    for (uint32_t i = 0; i < nb; i++) {
        uint32_t similar = 0;
        for (uint32_t j = 0; j < nb; j += stride)
            similar += de76_sq(px[border[i]], px[border[j]]) <= range_sq / 4;
        if (similar >= o.border_share * nref && seed[border[i]] == unseen) {
            seed[border[i]] = border[i];
            queue[qt++] = border[i];
        }
    }
    while (qh < qt) {
        uint32_t p = queue[qh++], x = p % sw, y = p / sw;
        uint32_t nbr[4];
        int nn = 0;
        if (x > 0)
            nbr[nn++] = p - 1;
        if (x + 1 < sw)
            nbr[nn++] = p + 1;
        if (y > 0)
            nbr[nn++] = p - sw;
        if (y + 1 < sh)
            nbr[nn++] = p + sw;
        for (int j = 0; j < nn; j++) {
            uint32_t q = nbr[j];
            if (seed[q] != unseen || de76_sq(px[q], px[p]) > step_sq ||
                de76_sq(px[q], px[seed[p]]) > range_sq)
                continue;
            seed[q] = seed[p];
            queue[qt++] = q;
        }
    }
    uint32_t nfg = 0;
    for (uint32_t i = 0; i < n; i++)
        if (seed[i] == unseen)
            memcpy(fg[nfg++], px[i], sizeof fg[0]);
    /* Nothing left, or almost: a subject the colour of its background (a white shirt on white)
     * or a photo with no background at all; then every pixel counts. */
    if (nfg < n / 50 + 1) {
        memcpy(fg, px, (size_t)n * sizeof *fg);
        nfg = n;
    }
    clusters_t cl;
    kmeans((const float(*)[3])fg, nfg, o.k, o.seed, &cl, assign);
    double share[NAMES] = {0};
    float best_lab[NAMES][3];
    uint32_t best_count[NAMES] = {0};
    for (int j = 0; j < cl.k; j++) {
        if (!cl.count[j])
            continue;
        int name = lookalike_colour_nearest(cl.c[j]);
        share[name] += (double)cl.count[j] / nfg;
        if (cl.count[j] > best_count[name]) {
            best_count[name] = cl.count[j];
            memcpy(best_lab[name], cl.c[j], sizeof best_lab[name]);
        }
    }
    size_t cnt = 0;
    for (;;) {
        int pick = -1;
        for (int i = 0; i < NAMES; i++)
            if (share[i] > 0.0 && share[i] >= o.min_share && (pick < 0 || share[i] > share[pick]))
                pick = i;
        if (pick < 0 || cnt == cap)
            break;
        out[cnt] = (lookalike_colour_t){.index = pick,
                                        .name = names[pick].en,
                                        .name_vi = names[pick].vi,
                                        .share = (float)share[pick],
                                        .lab = {best_lab[pick][0], best_lab[pick][1], best_lab[pick][2]}};
        share[pick] = 0.0;
        cnt++;
    }
    *nout = cnt;
    rc = 0;
fail:
    if (rc != 0 && err && errlen)
        snprintf(err, errlen, "colours: out of memory");
    free(px);
    free(fg);
    free(border);
    free(queue);
    free(seed);
    free(assign);
    return rc;
}
