#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lookalike/lookalike.h"

typedef struct {
    uint8_t *px;
    uint32_t w, h;
} img_t;

static img_t img_new(uint32_t w, uint32_t h, uint8_t r, uint8_t g, uint8_t b)
{
    img_t im = {malloc((size_t)w * h * 3), w, h};
    cr_assert_not_null(im.px);
    for (size_t i = 0; i < (size_t)w * h; i++) {
        im.px[i * 3] = r;
        im.px[i * 3 + 1] = g;
        im.px[i * 3 + 2] = b;
    }
    return im;
}

static void fill_rect(img_t *im, uint32_t x0, uint32_t y0, uint32_t x1, uint32_t y1, uint8_t r, uint8_t g,
                      uint8_t b)
{
    for (uint32_t y = y0; y < y1; y++)
        for (uint32_t x = x0; x < x1; x++) {
            uint8_t *p = im->px + ((size_t)y * im->w + x) * 3;
            p[0] = r;
            p[1] = g;
            p[2] = b;
        }
}

/* Adds deterministic noise of +-amp to every channel, as a camera would. */
static void add_noise(img_t *im, int amp)
{
    uint32_t s = 12345;
    for (size_t i = 0; i < (size_t)im->w * im->h * 3; i++) {
        s = s * 1103515245u + 12345u;
        int v = im->px[i] + (int)((s >> 16) % (2 * amp + 1)) - amp;
        im->px[i] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
    }
}

static size_t extract(const img_t *im, lookalike_colour_t *out, size_t cap)
{
    size_t n;
    char err[128];
    int rc = lookalike_colours_extract(im->px, im->w, im->h, NULL, out, cap, &n, err, sizeof err);
    cr_assert_eq(rc, 0, "%s", err);
    float total = 0;
    for (size_t i = 0; i < n; i++) {
        total += out[i].share;
        if (i)
            cr_assert_geq(out[i - 1].share, out[i].share);
    }
    cr_assert_leq(total, 1.0001f);
    return n;
}

Test(colour, lab_conversion)
{
    float lab[3];
    lookalike_colour_srgb_to_lab(255, 255, 255, lab);
    cr_assert_float_eq(lab[0], 100.0f, 0.05f);
    cr_assert_float_eq(lab[1], 0.0f, 0.05f);
    cr_assert_float_eq(lab[2], 0.0f, 0.05f);
    lookalike_colour_srgb_to_lab(0, 0, 0, lab);
    cr_assert_float_eq(lab[0], 0.0f, 0.01f);
    lookalike_colour_srgb_to_lab(255, 0, 0, lab);
    cr_assert_float_eq(lab[0], 53.24f, 0.1f);
    cr_assert_float_eq(lab[1], 80.09f, 0.2f);
    cr_assert_float_eq(lab[2], 67.20f, 0.2f);
}

Test(colour, ciede2000_reference_pairs)
{
    /* Sharma, Wu and Dalal (2005), test data pairs 1, 7, 17, 25 and 34. */
    static const float pairs[][7] = {
        {50.0000f, 2.6772f, -79.7751f, 50.0000f, 0.0000f, -82.7485f, 2.0425f},
        {50.0000f, 0.0000f, 0.0000f, 50.0000f, -1.0000f, 2.0000f, 2.3669f},
        {50.0000f, 2.5000f, 0.0000f, 73.0000f, 25.0000f, -18.0000f, 27.1492f},
        {60.2574f, -34.0099f, 36.2677f, 60.4626f, -34.1751f, 39.4387f, 1.2644f},
        {22.7233f, 20.0904f, -46.6940f, 23.0331f, 14.9730f, -42.5619f, 2.0373f},
    };
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        double d = lookalike_colour_ciede2000(pairs[i], pairs[i] + 3);
        cr_assert_float_eq(d, pairs[i][6], 1e-3, "pair %zu: %f", i, d);
        cr_assert_float_eq(lookalike_colour_ciede2000(pairs[i] + 3, pairs[i]), d, 1e-6);
    }
}

Test(colour, palette_names)
{
    static const struct {
        uint8_t r, g, b;
        int want;
    } cases[] = {
        {10, 10, 10, LOOKALIKE_COLOUR_BLACK},    {250, 250, 250, LOOKALIKE_COLOUR_WHITE},
        {128, 128, 128, LOOKALIKE_COLOUR_GREY},  {210, 20, 25, LOOKALIKE_COLOUR_RED},
        {250, 130, 10, LOOKALIKE_COLOUR_ORANGE}, {250, 220, 20, LOOKALIKE_COLOUR_YELLOW},
        {40, 150, 50, LOOKALIKE_COLOUR_GREEN},   {40, 110, 210, LOOKALIKE_COLOUR_BLUE},
        {20, 28, 75, LOOKALIKE_COLOUR_NAVY},     {120, 20, 130, LOOKALIKE_COLOUR_PURPLE},
        {250, 175, 195, LOOKALIKE_COLOUR_PINK},  {125, 70, 30, LOOKALIKE_COLOUR_BROWN},
        {240, 235, 210, LOOKALIKE_COLOUR_BEIGE},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        float lab[3];
        lookalike_colour_srgb_to_lab(cases[i].r, cases[i].g, cases[i].b, lab);
        int got = lookalike_colour_nearest(lab);
        cr_assert_eq(got, cases[i].want, "(%d,%d,%d) named %s, want %s", cases[i].r, cases[i].g, cases[i].b,
                     lookalike_colour_name(got, 0), lookalike_colour_name(cases[i].want, 0));
    }
    cr_assert_str_eq(lookalike_colour_name(LOOKALIKE_COLOUR_RED, 1), "đỏ");
    cr_assert_str_eq(lookalike_colour_name(LOOKALIKE_COLOUR_NAVY, 1), "xanh navy");
    cr_assert_null(lookalike_colour_name(LOOKALIKE_COLOUR_COUNT, 0));
    cr_assert_null(lookalike_colour_name(-1, 0));
}

Test(colour, lookup_by_name)
{
    cr_assert_eq(lookalike_colour_lookup("Đỏ"), LOOKALIKE_COLOUR_RED);
    cr_assert_eq(lookalike_colour_lookup("do"), LOOKALIKE_COLOUR_RED);
    cr_assert_eq(lookalike_colour_lookup("RED"), LOOKALIKE_COLOUR_RED);
    cr_assert_eq(lookalike_colour_lookup("xanh lá"), LOOKALIKE_COLOUR_GREEN);
    cr_assert_eq(lookalike_colour_lookup("Xanh Dương"), LOOKALIKE_COLOUR_BLUE);
    cr_assert_eq(lookalike_colour_lookup("gray"), LOOKALIKE_COLOUR_GREY);
    cr_assert_eq(lookalike_colour_lookup("trắng"), LOOKALIKE_COLOUR_WHITE);
    cr_assert_eq(lookalike_colour_lookup("be"), LOOKALIKE_COLOUR_BEIGE);
    cr_assert_eq(lookalike_colour_lookup("magenta"), -1);
    cr_assert_eq(lookalike_colour_lookup("\xff"), -1);
    cr_assert_eq(lookalike_colour_lookup(""), -1);
    for (int i = 0; i < LOOKALIKE_COLOUR_COUNT; i++) {
        cr_assert_eq(lookalike_colour_lookup(lookalike_colour_name(i, 0)), i);
        cr_assert_eq(lookalike_colour_lookup(lookalike_colour_name(i, 1)), i);
    }
}

Test(colour, red_shirt_on_white_background)
{
    img_t im = img_new(300, 400, 250, 250, 250);
    /* A crude shirt: body and sleeves in red, with a darker red collar. */
    fill_rect(&im, 90, 80, 210, 340, 200, 25, 30);
    fill_rect(&im, 40, 80, 90, 170, 200, 25, 30);
    fill_rect(&im, 210, 80, 260, 170, 200, 25, 30);
    fill_rect(&im, 130, 80, 170, 95, 140, 15, 20);
    add_noise(&im, 6);
    lookalike_colour_t c[8];
    size_t n = extract(&im, c, 8);
    cr_assert_geq(n, 1);
    cr_assert_str_eq(c[0].name, "red");
    cr_assert_str_eq(c[0].name_vi, "đỏ");
    cr_assert_gt(c[0].share, 0.9f, "share %f", c[0].share);
    for (size_t i = 0; i < n; i++)
        cr_assert_neq(c[i].index, LOOKALIKE_COLOUR_WHITE, "the background is not a colour of the shirt");
    free(im.px);
}

Test(colour, two_colour_image_shares)
{
    /* Edge to edge, 70% navy above 30% yellow: no plain border, so both count. */
    img_t im = img_new(200, 200, 22, 30, 80);
    fill_rect(&im, 0, 140, 200, 200, 250, 215, 10);
    add_noise(&im, 4);
    lookalike_colour_t c[8];
    size_t n = extract(&im, c, 8);
    cr_assert_eq(n, 2);
    cr_assert_str_eq(c[0].name, "navy");
    cr_assert_str_eq(c[1].name, "yellow");
    cr_assert_float_eq(c[0].share, 0.70f, 0.02f);
    cr_assert_float_eq(c[1].share, 0.30f, 0.02f);
    free(im.px);
}

Test(colour, two_colour_product_on_background)
{
    /* A green and pink object (60/40) in the middle of a white frame. */
    img_t im = img_new(240, 240, 255, 255, 255);
    fill_rect(&im, 40, 40, 200, 136, 40, 150, 50);
    fill_rect(&im, 40, 136, 200, 200, 250, 170, 190);
    lookalike_colour_t c[8];
    size_t n = extract(&im, c, 8);
    cr_assert_eq(n, 2);
    cr_assert_str_eq(c[0].name, "green");
    cr_assert_str_eq(c[1].name, "pink");
    cr_assert_float_eq(c[0].share, 0.60f, 0.02f);
    cr_assert_float_eq(c[1].share, 0.40f, 0.02f);
    free(im.px);
}

Test(colour, gradient_background_and_subject_touching_the_edge)
{
    /* A wall lit unevenly, grey to near white top to bottom and left to right, as in a phone
     * photo; black trousers standing on the bottom edge take 30% of the frame. */
    img_t im = img_new(300, 400, 0, 0, 0);
    for (uint32_t y = 0; y < 400; y++)
        for (uint32_t x = 0; x < 300; x++) {
            uint8_t v = (uint8_t)(170 + (x * 40) / 300 + (y * 40) / 400);
            fill_rect(&im, x, y, x + 1, y + 1, v, v, (uint8_t)(v - 6));
        }
    fill_rect(&im, 90, 120, 210, 400, 20, 20, 24);
    add_noise(&im, 3);
    lookalike_colour_t c[8];
    size_t n = extract(&im, c, 8);
    cr_assert_eq(n, 1, "only the trousers; first %s %f", c[0].name, c[0].share);
    cr_assert_str_eq(c[0].name, "black");
    free(im.px);
}

Test(colour, white_on_white_and_merging)
{
    /* A white object on white: the foreground is empty, so the whole image is white. */
    img_t im = img_new(64, 64, 252, 252, 252);
    lookalike_colour_t c[8];
    size_t n = extract(&im, c, 8);
    cr_assert_eq(n, 1);
    cr_assert_str_eq(c[0].name, "white");
    cr_assert_float_eq(c[0].share, 1.0f, 1e-4);
    free(im.px);
    /* Two shades of blue in four bands: clusters merge into one "blue". */
    im = img_new(100, 100, 30, 100, 200);
    fill_rect(&im, 0, 50, 100, 100, 70, 130, 215);
    n = extract(&im, c, 8);
    cr_assert_eq(n, 1);
    cr_assert_str_eq(c[0].name, "blue");
    cr_assert_float_eq(c[0].share, 1.0f, 1e-4);
    free(im.px);
}

Test(colour, deterministic_and_capped_output)
{
    img_t im = img_new(123, 77, 200, 30, 30);
    fill_rect(&im, 0, 0, 41, 77, 30, 150, 40);
    fill_rect(&im, 41, 0, 82, 77, 30, 100, 200);
    add_noise(&im, 20);
    lookalike_colour_t a[8], b[8], one[1];
    size_t na = extract(&im, a, 8), nb = extract(&im, b, 8);
    cr_assert_eq(na, 3);
    cr_assert_eq(na, nb);
    for (size_t i = 0; i < na; i++) {
        cr_assert_eq(a[i].index, b[i].index);
        cr_assert_eq(a[i].share, b[i].share);
    }
    cr_assert_eq(extract(&im, one, 1), 1);
    cr_assert_eq(one[0].index, a[0].index);
    free(im.px);
}

Test(colour, odd_sizes_and_errors)
{
    uint8_t px[3] = {0, 0, 0};
    lookalike_colour_t c[4];
    size_t n;
    char err[160];
    cr_assert_eq(lookalike_colours_extract(px, 1, 1, NULL, c, 4, &n, err, sizeof err), 0);
    cr_assert_eq(n, 1);
    cr_assert_str_eq(c[0].name, "black");
    img_t line = img_new(1000, 1, 255, 215, 0);
    cr_assert_eq(lookalike_colours_extract(line.px, 1000, 1, NULL, c, 4, &n, err, sizeof err), 0);
    cr_assert_str_eq(c[0].name, "yellow");
    free(line.px);
    cr_assert_eq(lookalike_colours_extract(px, 0, 1, NULL, c, 4, &n, err, sizeof err), LOOKALIKE_EINVAL);
    cr_assert_eq(lookalike_colours_extract(px, 100000, 100000, NULL, c, 4, &n, err, sizeof err),
                 LOOKALIKE_ETOOLARGE);
    cr_assert(strstr(err, "too large"), "%s", err);
    lookalike_colour_opts_t o;
    lookalike_colour_opts_default(&o);
    o.k = 1;
    cr_assert_eq(lookalike_colours_extract(px, 1, 1, &o, c, 4, &n, err, sizeof err), LOOKALIKE_EINVAL);
    o.k = 4;
    o.min_share = NAN;
    cr_assert_eq(lookalike_colours_extract(px, 1, 1, &o, c, 4, &n, err, sizeof err), LOOKALIKE_EINVAL);
    o.min_share = 0.0f;
    o.background_range = -1.0f;
    cr_assert_eq(lookalike_colours_extract(px, 1, 1, &o, c, 4, &n, err, sizeof err), LOOKALIKE_EINVAL);
}
