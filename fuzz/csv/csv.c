/* Fuzz target for the ingest metadata CSV reader and the row-to-product mapping: any bytes,
 * read with a header and without, under the default limits and under tiny ones, must parse or
 * fail cleanly with a line number. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lookalike/lookalike.h"

static void read_all(const uint8_t *data, size_t size, const lookalike_csv_limits_t *lim, int header)
{
    char err[256];
    lookalike_csv_t *c = lookalike_csv_open_buffer((const char *)data, size, lim, err, sizeof err);
    if (!c)
        abort();
    if (header && lookalike_csv_read_header(c, err, sizeof err) != 0) {
        if (strncmp(err, "line ", 5) != 0)
            abort();
        lookalike_csv_free(c);
        return;
    }
    int rc;
    while ((rc = lookalike_csv_next(c, err, sizeof err)) == 1) {
        size_t n = lookalike_csv_nfields(c);
        if (n == 0 || (header && n != lookalike_csv_ncols(c)))
            abort();
        for (size_t i = 0; i < n; i++) {
            size_t len;
            const char *f = lookalike_csv_field(c, i, &len);
            if (!f || strlen(f) != len || (lim && len > lim->max_field))
                abort();
        }
        if (header) {
            (void)lookalike_csv_get(c, lookalike_csv_col_name(c, 0));
            lookalike_product_t p;
            const char *image;
            char perr[256];
            if (lookalike_product_from_csv(c, &p, &image, perr, sizeof perr) == 0) {
                if (lookalike_product_validate(&p, NULL, 0) != 0)
                    abort();
                lookalike_product_release(&p);
            } else if (strncmp(perr, "line ", 5) != 0 || image) {
                abort();
            }
        }
    }
    /* Every error message says where. */
    if (rc < 0 && strncmp(err, "line ", 5) != 0)
        abort();
    lookalike_csv_free(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lookalike_csv_limits_t tiny = {.max_field = 7, .max_row = 32, .max_fields = 4};
    read_all(data, size, NULL, 1);
    read_all(data, size, NULL, 0);
    read_all(data, size, &tiny, 1);
    return 0;
}
