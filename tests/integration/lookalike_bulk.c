/* Writes many products into a catalogue quickly, through the catalogue API the service uses
 * (lookalike_catalog_put with a stored vector), so that tests can put thousands of changes in
 * the log while a node is down without embedding a photo for each:
 *
 *   lookalike_bulk STORE COLLECTION COUNT ID_PREFIX PHOTO
 *
 * Every product references the same stored photo, carries a random unit vector of the
 * collection's dimension, a title and one of four categories. Prints the last seq written. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lookalike/lookalike.h"

static int read_photo(const char *path, void **data, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    *data = n > 0 ? malloc((size_t)n) : NULL;
    int ok = *data && fread(*data, 1, (size_t)n, f) == (size_t)n;
    fclose(f);
    *len = (size_t)n;
    return ok ? 0 : -1;
}

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: lookalike_bulk STORE COLLECTION COUNT ID_PREFIX PHOTO\n");
        return 2;
    }
    static const char *const cats[] = {"dress", "shoes", "hat", "pants"};
    char err[512], sha[65];
    long count = atol(argv[3]);
    void *photo = NULL;
    size_t plen = 0;
    lookalike_collection_t col;
    lookalike_catalog_t *c = lookalike_catalog_open(argv[1], NULL, err, sizeof err);
    if (!c || read_photo(argv[5], &photo, &plen) != 0 ||
        lookalike_catalog_get_collection(c, argv[2], &col, err, sizeof err) != 0 ||
        lookalike_catalog_put_image(c, photo, plen, sha, err, sizeof err) != 0) {
        fprintf(stderr, "lookalike_bulk: %s\n", c && !photo ? "cannot read the photo" : err);
        return 1;
    }
    float *vec = malloc(col.dim * sizeof *vec);
    uint64_t last = 0;
    srand(7);
    for (long i = 0; vec && i < count; i++) {
        double norm = 0;
        for (uint32_t d = 0; d < col.dim; d++) {
            vec[d] = (float)rand() / RAND_MAX - 0.5f;
            norm += (double)vec[d] * vec[d];
        }
        for (uint32_t d = 0; d < col.dim; d++)
            vec[d] = (float)(vec[d] / sqrt(norm));
        lookalike_product_t p;
        char id[64], title[64];
        lookalike_product_init(&p);
        snprintf(id, sizeof id, "%s-%ld", argv[4], i);
        snprintf(title, sizeof title, "bulk product %ld", i);
        p.id = strdup(id);
        p.title = strdup(title);
        p.category = strdup(cats[i % 4]);
        memcpy(p.image_sha256, sha, sizeof sha);
        int rc = lookalike_catalog_put(c, argv[2], &p, LOOKALIKE_PUT_UPSERT, NULL, 0, vec, col.dim, err,
                                       sizeof err);
        last = p.seq;
        lookalike_product_release(&p);
        if (rc != 0) {
            fprintf(stderr, "lookalike_bulk: product %ld: %s\n", i, err);
            return 1;
        }
    }
    printf("%llu\n", (unsigned long long)last);
    free(vec);
    free(photo);
    lookalike_catalog_close(c);
    return vec ? 0 : 1;
}
