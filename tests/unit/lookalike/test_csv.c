#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lookalike/lookalike.h"

/* Reads every record of s (no header) into rows[r][f]; returns the row count or the error. */
typedef struct {
    char cell[8][4][64];
    size_t nf[8];
    uint64_t line[8];
    int n;
} table_t;

static int read_all(const char *s, size_t len, table_t *t, char *err, size_t errlen)
{
    memset(t, 0, sizeof *t);
    lookalike_csv_t *c = lookalike_csv_open_buffer(s, len, NULL, err, errlen);
    cr_assert_not_null(c);
    int rc;
    while ((rc = lookalike_csv_next(c, err, errlen)) == 1) {
        cr_assert_lt(t->n, 8);
        t->nf[t->n] = lookalike_csv_nfields(c);
        t->line[t->n] = lookalike_csv_line(c);
        for (size_t i = 0; i < t->nf[t->n] && i < 4; i++) {
            size_t flen;
            const char *f = lookalike_csv_field(c, i, &flen);
            cr_assert_eq(flen, strlen(f));
            snprintf(t->cell[t->n][i], 64, "%s", f);
        }
        t->n++;
    }
    lookalike_csv_free(c);
    return rc < 0 ? rc : t->n;
}

static table_t ok(const char *s)
{
    table_t t;
    char err[160];
    int rc = read_all(s, strlen(s), &t, err, sizeof err);
    cr_assert_geq(rc, 0, "%s: %s", s, err);
    return t;
}

static void bad(const char *s, int want, const char *msg)
{
    table_t t;
    char err[160] = "";
    int rc = read_all(s, strlen(s), &t, err, sizeof err);
    cr_assert_eq(rc, want, "%s: got %d (%s)", s, rc, err);
    cr_assert(strstr(err, msg), "%s: message \"%s\" lacks \"%s\"", s, err, msg);
}

Test(csv, plain_rows_and_line_endings)
{
    table_t t = ok("a,b,c\r\n1,2,3\n4,,6\r7,8,9");
    cr_assert_eq(t.n, 4);
    cr_assert_str_eq(t.cell[0][2], "c");
    cr_assert_str_eq(t.cell[2][1], "");
    cr_assert_str_eq(t.cell[3][0], "7");
    cr_assert_eq(t.line[0], 1);
    cr_assert_eq(t.line[1], 2);
    cr_assert_eq(t.line[2], 3);
    cr_assert_eq(t.line[3], 4);
    cr_assert_eq(t.nf[2], 3);
    /* A trailing comma is one more empty field; trailing newline is no extra record. */
    t = ok("x,\n\n\ny\n");
    cr_assert_eq(t.n, 2);
    cr_assert_eq(t.nf[0], 2);
    cr_assert_eq(t.line[1], 4, "empty lines are skipped but counted");
}

Test(csv, quoted_fields)
{
    table_t t = ok("\"a,b\",\"say \"\"hi\"\"\",\"two\nlines\",\"\"\r\n\"crlf\r\nin\",z\n");
    cr_assert_eq(t.n, 2);
    cr_assert_str_eq(t.cell[0][0], "a,b");
    cr_assert_str_eq(t.cell[0][1], "say \"hi\"");
    cr_assert_str_eq(t.cell[0][2], "two\nlines");
    cr_assert_str_eq(t.cell[0][3], "");
    cr_assert_eq(t.nf[0], 4);
    cr_assert_str_eq(t.cell[1][0], "crlf\r\nin");
    cr_assert_eq(t.line[1], 3, "the second record starts after the embedded line break");
    t = ok("\"\",\"\"");
    cr_assert_eq(t.n, 1);
    cr_assert_eq(t.nf[0], 2);
}

Test(csv, bom_and_utf8)
{
    table_t t = ok("\xef\xbb\xbfname,màu\nÁo thun,đỏ\n");
    cr_assert_eq(t.n, 2);
    cr_assert_str_eq(t.cell[0][0], "name");
    cr_assert_str_eq(t.cell[1][1], "đỏ");
    /* A non-BOM character starting with EF is data. */
    t = ok("\xef\xbc\x81x\n");
    cr_assert_str_eq(t.cell[0][0], "\xef\xbc\x81x");
}

Test(csv, malformed_inputs_name_the_line)
{
    bad("a,b\n\"open\nstill open", LOOKALIKE_EINVAL,
        "line 3: field 1: quoted field opened on line 2 never closed");
    bad("a,b\nx,y\"z\n", LOOKALIKE_EINVAL, "line 2: field 2: quote inside an unquoted field");
    bad("\"a\"b\n", LOOKALIKE_EINVAL, "line 1: field 1: unexpected character after a closing quote");
    bad("ok\nfine\nbad\xff\n", LOOKALIKE_EUTF8, "line 3: field 1: invalid UTF-8 at byte 3");
}

Test(csv, nul_byte)
{
    static const char s[] = "a,\"b\0c\"\n";
    table_t t;
    char err[160];
    cr_assert_eq(read_all(s, sizeof s - 1, &t, err, sizeof err), LOOKALIKE_EINVAL);
    cr_assert(strstr(err, "line 1: field 2: NUL byte"), "%s", err);
}

Test(csv, limits)
{
    lookalike_csv_limits_t lim = {.max_field = 8, .max_row = 20, .max_fields = 3};
    char err[160];
    const char *cases[][2] = {
        {"123456789\n", "line 1: field 1 too large (over 8 bytes)"},
        {"\"12345\n6789\"\n", "line 2: field 1 too large (over 8 bytes)"},
        {"1234567,1234567,1234567\n", "line 1: row too large (over 20 bytes)"},
        {"a,b,c,d\n", "line 1: too many fields (over 3)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        lookalike_csv_t *c =
            lookalike_csv_open_buffer(cases[i][0], strlen(cases[i][0]), &lim, err, sizeof err);
        cr_assert_not_null(c);
        cr_assert_eq(lookalike_csv_next(c, err, sizeof err), LOOKALIKE_ETOOLARGE, "case %zu", i);
        cr_assert_str_eq(err, cases[i][1]);
        lookalike_csv_free(c);
    }
    /* Exactly at the limits is fine. */
    lookalike_csv_t *c = lookalike_csv_open_buffer("12345678,1,2\n", 13, &lim, err, sizeof err);
    cr_assert_eq(lookalike_csv_next(c, err, sizeof err), 1, "%s", err);
    lookalike_csv_free(c);
    lim.max_row = 0;
    cr_assert_null(lookalike_csv_open_buffer("", 0, &lim, err, sizeof err));
}

Test(csv, header_mapping)
{
    const char *s = "id,Title,price\n1,Áo,10\n2,\"Quần, dài\",20\n3,x\n";
    char err[160];
    lookalike_csv_t *c = lookalike_csv_open_buffer(s, strlen(s), NULL, err, sizeof err);
    cr_assert_eq(lookalike_csv_read_header(c, err, sizeof err), 0, "%s", err);
    cr_assert_eq(lookalike_csv_ncols(c), 3);
    cr_assert_str_eq(lookalike_csv_col_name(c, 1), "Title");
    cr_assert_null(lookalike_csv_col_name(c, 3));
    cr_assert_eq(lookalike_csv_column(c, "title"), 1);
    cr_assert_eq(lookalike_csv_column(c, "nope"), -1);
    cr_assert_eq(lookalike_csv_next(c, err, sizeof err), 1);
    cr_assert_str_eq(lookalike_csv_get(c, "TITLE"), "Áo");
    cr_assert_null(lookalike_csv_get(c, "nope"));
    cr_assert_null(lookalike_csv_field(c, 3, NULL));
    cr_assert_eq(lookalike_csv_next(c, err, sizeof err), 1);
    cr_assert_str_eq(lookalike_csv_get(c, "title"), "Quần, dài");
    cr_assert_eq(lookalike_csv_line(c), 3);
    cr_assert_eq(lookalike_csv_next(c, err, sizeof err), LOOKALIKE_EINVAL);
    cr_assert_str_eq(err, "line 4: 2 fields, but the header has 3 columns");
    cr_assert_eq(lookalike_csv_read_header(c, err, sizeof err), LOOKALIKE_EINVAL);
    lookalike_csv_free(c);

    const char *hdr_bad[][2] = {
        {"", "line 1: no header row (empty input)"},
        {"a,,c\n", "line 1: header column 2 has no name"},
        {"a,b,A\n", "line 1: header column 3 repeats the name \"a\""},
    };
    for (size_t i = 0; i < sizeof hdr_bad / sizeof hdr_bad[0]; i++) {
        c = lookalike_csv_open_buffer(hdr_bad[i][0], strlen(hdr_bad[i][0]), NULL, err, sizeof err);
        cr_assert_eq(lookalike_csv_read_header(c, err, sizeof err), LOOKALIKE_EINVAL);
        cr_assert_str_eq(err, hdr_bad[i][1]);
        lookalike_csv_free(c);
    }
}

Test(csv, streams_from_a_file_across_chunks)
{
    /* Enough rows that fields straddle the 64 KiB read chunks, with quoted line breaks. */
    FILE *f = tmpfile();
    cr_assert_not_null(f);
    fputs("\xef\xbb\xbfn,text\r\n", f);
    for (int i = 0; i < 5000; i++)
        fprintf(f, "%d,\"row %d, \"\"quoted\"\"\nsecond line\"\r\n", i, i);
    rewind(f);
    char err[160];
    lookalike_csv_t *c = lookalike_csv_open_file(f, NULL, err, sizeof err);
    cr_assert_eq(lookalike_csv_read_header(c, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq(lookalike_csv_col_name(c, 0), "n");
    int rows = 0, rc;
    char want[96];
    while ((rc = lookalike_csv_next(c, err, sizeof err)) == 1) {
        cr_assert_eq(atoi(lookalike_csv_get(c, "n")), rows);
        snprintf(want, sizeof want, "row %d, \"quoted\"\nsecond line", rows);
        cr_assert_str_eq(lookalike_csv_get(c, "text"), want);
        cr_assert_eq(lookalike_csv_line(c), (uint64_t)(2 + 2 * rows));
        rows++;
    }
    cr_assert_eq(rc, 0, "%s", err);
    cr_assert_eq(rows, 5000);
    lookalike_csv_free(c);
    fclose(f);
}

Test(csv, demo_catalogue_metadata)
{
    const char *dir = getenv("DATA_DIR");
    cr_assert_not_null(dir, "DATA_DIR is exported by the Makefile");
    char path[4096];
    snprintf(path, sizeof path, "%s/products/metadata.csv", dir);
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s", path);
    char err[160];
    lookalike_csv_t *c = lookalike_csv_open_file(f, NULL, err, sizeof err);
    cr_assert_eq(lookalike_csv_read_header(c, err, sizeof err), 0, "%s", err);
    static const char *cols[] = {"path",  "split",  "category", "image_id",
                                 "width", "height", "bytes",    "sha256"};
    cr_assert_eq(lookalike_csv_ncols(c), 8);
    for (size_t i = 0; i < 8; i++)
        cr_assert_str_eq(lookalike_csv_col_name(c, i), cols[i]);
    static const char *cats[] = {"dress", "hat",   "longsleeve", "outwear", "pants",
                                 "shirt", "shoes", "shorts",     "skirt",   "t-shirt"};
    int rows = 0, per_cat[10] = {0}, rc;
    while ((rc = lookalike_csv_next(c, err, sizeof err)) == 1) {
        rows++;
        const char *cat = lookalike_csv_get(c, "category");
        int found = -1;
        for (int i = 0; i < 10; i++)
            if (strcmp(cat, cats[i]) == 0)
                found = i;
        cr_assert_geq(found, 0, "line %llu: category %s", (unsigned long long)lookalike_csv_line(c), cat);
        per_cat[found]++;
        cr_assert_eq(strlen(lookalike_csv_get(c, "sha256")), 64);
        cr_assert_geq(atoi(lookalike_csv_get(c, "width")), 400);
        cr_assert_gt(atoi(lookalike_csv_get(c, "height")), 0);
        cr_assert_gt(atoi(lookalike_csv_get(c, "bytes")), 0);
        cr_assert(strstr(lookalike_csv_get(c, "path"), cat));
    }
    cr_assert_eq(rc, 0, "%s", err);
    cr_assert_eq(rows, 713);
    /* Per-category totals from the data manifest (test + validation). */
    static const int want[] = {47, 26, 121, 62, 91, 55, 99, 55, 24, 133};
    for (int i = 0; i < 10; i++)
        cr_assert_eq(per_cat[i], want[i], "%s: %d", cats[i], per_cat[i]);
    lookalike_csv_free(c);
    fclose(f);
}
