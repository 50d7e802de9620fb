/* lookalike-synth: a synthetic catalogue for speed measurements, as JSON lines that
 * `lookalike ingest --metadata FILE.jsonl` reads (no photos: each product carries a vector).
 *
 *   build/lookalike-synth [--count 100000] [--dim 768] [--seed 1] [--clusters 512] > synth.jsonl
 *
 * Products look like a clothing shop's: a category (20, Vietnamese names), a brand (40), a
 * title and a description drawn from a Vietnamese-like vocabulary with accents and Zipf-like
 * word frequencies (so text search meets both rare and very common words), colours, sizes, a
 * price in VND and a material attribute. Vectors are clustered, as CNN embeddings of a
 * catalogue are: `clusters` Gaussian centres, each tied to one category, and every product is
 * its cluster's centre plus noise (one third of the centre's spread), written as integers
 * (-999..999, the scale does not matter under the cosine metric) to keep the file small.
 * The same arguments always give the same file. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const categories[] = {"áo thun",  "áo sơ mi",   "áo khoác",      "áo len", "quần jean",
                                         "quần tây", "quần short", "váy",           "đầm",    "chân váy",
                                         "giày",     "dép",        "giày thể thao", "mũ",     "túi xách",
                                         "balo",     "thắt lưng",  "khăn",          "tất",    "đồ bơi"};
static const char *const syllables[] = {
    "an",  "bình", "cao",  "dài", "đẹp", "êm",    "gọn",  "hồng", "ít",   "kẻ",  "lụa",  "mát", "nhẹ", "ôm",
    "phố", "quý",  "rộng", "sọc", "tơ",  "ưa",    "văn",  "xanh", "yêu",  "bạc", "cổ",   "dày", "gấm", "hạt",
    "kim", "lanh", "mềm",  "nâu", "ống", "phồng", "rách", "sang", "tròn", "uốn", "vàng", "xám", "bèo", "chun",
    "dệt", "đen",  "giả",  "hè",  "in",  "khoá",  "len",  "mỏng", "nỉ",   "ô",   "pha",  "rêu", "sữa", "thô"};
static const char *const colours[] = {"black", "white", "grey",   "red",  "orange", "yellow", "green",
                                      "blue",  "navy",  "purple", "pink", "brown",  "beige"};
static const char *const sizes[] = {"XS", "S", "M", "L", "XL", "XXL", "36", "38", "40", "42"};
static const char *const materials[] = {"cotton", "linen", "silk", "wool", "polyester", "denim", "leather"};

#define VOCAB 3000
#define BRANDS 40

static uint64_t rng_state;

static uint64_t rnd(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double rnd01(void)
{
    return (double)(rnd() >> 11) / 9007199254740992.0;
}

static double gauss(void)
{
    double u = rnd01(), v = rnd01();
    return sqrt(-2.0 * log(u + 1e-300)) * cos(6.283185307179586 * v);
}

/* A word of the vocabulary: one to three syllables, fixed by its index. */
static void word(size_t i, char *out, size_t cap)
{
    size_t n = sizeof syllables / sizeof *syllables;
    size_t parts = 1 + i % 3;
    out[0] = 0;
    for (size_t p = 0, x = i * 2654435761u + 17; p < parts; p++, x /= n)
        strncat(out, syllables[x % n], cap - strlen(out) - 1);
}

/* A vocabulary index with Zipf-like frequencies (rank r drawn with weight about 1/r). */
static size_t zipf(void)
{
    return (size_t)(exp(rnd01() * log((double)VOCAB))) - 1;
}

static int usage(void)
{
    fprintf(stderr, "usage: lookalike-synth [--count N] [--dim D] [--seed S] [--clusters C] > FILE.jsonl\n");
    return 2;
}

int main(int argc, char **argv)
{
    long count = 100000, dim = 768, seed = 1, clusters = 512;
    for (int i = 1; i < argc; i += 2) {
        char *end;
        long v = i + 1 < argc ? strtol(argv[i + 1], &end, 10) : 0;
        if (i + 1 >= argc || *end || v < 1)
            return usage();
        if (!strcmp(argv[i], "--count"))
            count = v;
        else if (!strcmp(argv[i], "--dim") && v >= 2 && v <= 4096)
            dim = v;
        else if (!strcmp(argv[i], "--seed"))
            seed = v;
        else if (!strcmp(argv[i], "--clusters"))
            clusters = v;
        else
            return usage();
    }
    size_t ncat = sizeof categories / sizeof *categories;
    float *centres = malloc((size_t)clusters * (size_t)dim * sizeof *centres);
    char *line = malloc((size_t)dim * 6 + 8192);
    if (!centres || !line) {
        fprintf(stderr, "lookalike-synth: out of memory\n");
        return 1;
    }
    rng_state = (uint64_t)seed * 0x2545f4914f6cdd1dull;
    for (long i = 0; i < clusters * dim; i++)
        centres[i] = (float)gauss();
    char w[64], w2[64], brand[64];
    for (long n = 0; n < count; n++) {
        long c = (long)(rnd() % (uint64_t)clusters);
        size_t cat = (size_t)c % ncat, b = rnd() % BRANDS;
        word(VOCAB + b, brand, sizeof brand);
        brand[0] = (char)(brand[0] >= 'a' && brand[0] <= 'z' ? brand[0] - 32 : brand[0]);
        word(zipf(), w, sizeof w);
        word(zipf(), w2, sizeof w2);
        size_t at = (size_t)snprintf(
            line, 8192,
            "{\"id\":\"syn-%07ld\",\"title\":\"%s %s %s %s\",\"category\":\"%s\","
            "\"brand\":\"%s\",\"colours\":[\"%s\"],\"sizes\":[\"%s\",\"%s\"],"
            "\"price\":%llu,\"currency\":\"VND\",\"attributes\":{\"material\":\"%s\"},"
            "\"description\":\"",
            n, categories[cat], w, w2, brand, categories[cat], brand,
            colours[rnd() % (sizeof colours / sizeof *colours)],
            sizes[rnd() % (sizeof sizes / sizeof *sizes)], sizes[rnd() % (sizeof sizes / sizeof *sizes)],
            (unsigned long long)(50 + rnd() % 4950) * 1000ull,
            materials[rnd() % (sizeof materials / sizeof *materials)]);
        for (int k = 0, words = 12 + (int)(rnd() % 13); k < words; k++) {
            word(zipf(), w, sizeof w);
            at += (size_t)snprintf(line + at, 8192 - at, "%s%s", k ? " " : "", w);
        }
        at += (size_t)snprintf(line + at, 64, "\",\"vector\":[");
        const float *centre = centres + (size_t)c * (size_t)dim;
        for (long d = 0; d < dim; d++) {
            double v = (centre[d] + gauss() / 3.0) * 200.0;
            long q = lround(v < -999 ? -999 : v > 999 ? 999 : v);
            at += (size_t)snprintf(line + at, 16, "%s%ld", d ? "," : "", q);
        }
        memcpy(line + at, "]}\n", 4);
        if (fputs(line, stdout) == EOF) {
            fprintf(stderr, "lookalike-synth: write failed\n");
            return 1;
        }
    }
    free(centres);
    free(line);
    return fflush(stdout) == 0 ? 0 : 1;
}
