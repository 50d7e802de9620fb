#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lookalike/lookalike.h"

static lookalike_csv_t *open_csv(const char *s)
{
    char err[160];
    lookalike_csv_t *c = lookalike_csv_open_buffer(s, strlen(s), NULL, err, sizeof err);
    cr_assert_not_null(c);
    cr_assert_eq(lookalike_csv_read_header(c, err, sizeof err), 0, "%s", err);
    return c;
}

Test(product_csv, maps_known_columns_and_attributes)
{
    lookalike_csv_t *c =
        open_csv("ID,Title,description,category,brand,price,currency,colors,size,image,material,"
                 "weight,code\n"
                 "sku-1,Áo thun,\"Cotton, mềm\",t-shirt,Coolmate,199000,vnd,\"đỏ; trắng |xanh\","
                 "M|L,img/a.jpg,cotton,180.5,007\n");
    char err[160];
    cr_assert_eq(lookalike_csv_next(c, err, sizeof err), 1);
    lookalike_product_t p;
    const char *image;
    cr_assert_eq(lookalike_product_from_csv(c, &p, &image, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq(p.id, "sku-1");
    cr_assert_str_eq(p.title, "Áo thun");
    cr_assert_str_eq(p.description, "Cotton, mềm");
    cr_assert_str_eq(p.category, "t-shirt");
    cr_assert_str_eq(p.brand, "Coolmate");
    cr_assert(p.has_price);
    cr_assert_float_eq(p.price, 199000, 0);
    cr_assert_str_eq(p.currency, "VND");
    cr_assert_eq(p.ncolours, 3);
    cr_assert_str_eq(p.colours[0], "đỏ");
    cr_assert_str_eq(p.colours[1], "trắng");
    cr_assert_str_eq(p.colours[2], "xanh");
    cr_assert_eq(p.nsizes, 2);
    cr_assert_str_eq(p.sizes[1], "L");
    cr_assert_str_eq(image, "img/a.jpg");
    cr_assert_eq(p.nattrs, 3);
    cr_assert_str_eq(p.attrs[0].key, "material");
    cr_assert_eq(p.attrs[0].type, LOOKALIKE_ATTR_STRING);
    cr_assert_eq(p.attrs[1].type, LOOKALIKE_ATTR_NUMBER);
    cr_assert_float_eq(p.attrs[1].num, 180.5, 0);
    cr_assert_eq(p.attrs[2].type, LOOKALIKE_ATTR_STRING, "a leading zero keeps a code as text");
    cr_assert_str_eq(p.attrs[2].str, "007");
    lookalike_product_release(&p);
    lookalike_csv_free(c);
}

Test(product_csv, empty_cells_are_absent_and_id_wins_over_image_id)
{
    lookalike_csv_t *c = open_csv("image_id,id,title,price,colours\nimg-1,,,,\nimg-2,real-id,x,,\n");
    char err[160];
    lookalike_product_t p;
    const char *image;
    cr_assert_eq(lookalike_csv_next(c, err, sizeof err), 1);
    cr_assert_eq(lookalike_product_from_csv(c, &p, &image, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq(p.id, "img-1");
    cr_assert_null(p.title);
    cr_assert_eq(p.has_price, 0);
    cr_assert_null(p.colours);
    cr_assert_null(image);
    lookalike_product_release(&p);
    cr_assert_eq(lookalike_csv_next(c, err, sizeof err), 1);
    cr_assert_eq(lookalike_product_from_csv(c, &p, &image, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq(p.id, "real-id");
    lookalike_product_release(&p);
    lookalike_csv_free(c);
}

static void bad_row(const char *csv, int want, const char *msg)
{
    lookalike_csv_t *c = open_csv(csv);
    char err[200] = "";
    cr_assert_eq(lookalike_csv_next(c, err, sizeof err), 1, "%s", err);
    lookalike_product_t p;
    const char *image = "unset";
    int rc = lookalike_product_from_csv(c, &p, &image, err, sizeof err);
    cr_assert_eq(rc, want, "%s: got %d (%s)", csv, rc, err);
    cr_assert_str_eq(err, msg);
    cr_assert_null(image);
    cr_assert_null(p.id);
    lookalike_csv_free(c);
}

Test(product_csv, errors_name_line_and_column)
{
    bad_row("id,title\n\nbad id,x\n", LOOKALIKE_EINVAL,
            "line 3: column id: an id must be 1 to 128 characters from A-Z a-z 0-9 . _ -");
    bad_row("id,Price\na,12abc\n", LOOKALIKE_EINVAL,
            "line 2: column Price: expected a number from 0 to 1e15");
    bad_row("id,price\na,-5\n", LOOKALIKE_EINVAL, "line 2: column price: expected a number from 0 to 1e15");
    bad_row("id,currency\na,dong\n", LOOKALIKE_EINVAL,
            "line 2: column currency: expected a 3-letter code such as VND");
    bad_row("colour,color\nred,blue\n", LOOKALIKE_EINVAL, "line 2: column color: colours given twice");
    bad_row("sizes\n\"1;2;3;4;5;6;7;8;9;10;11;12;13;14;15;16;17;18;19;20;21;22;23;24;25;26;27;28;29;30;31;32;"
            "33\"\n",
            LOOKALIKE_ETOOLARGE, "line 2: column sizes: too large (more than 32 items)");
    char title[700];
    memset(title, 't', 600);
    title[600] = '\0';
    char csv[800];
    snprintf(csv, sizeof csv, "title\n%s\n", title);
    bad_row(csv, LOOKALIKE_ETOOLARGE, "line 2: field \"title\": too large (600 bytes, at most 512)");
}

Test(product_csv, too_many_attribute_columns)
{
    char csv[4096];
    size_t n = 0;
    for (int i = 0; i < 65; i++)
        n += (size_t)snprintf(csv + n, sizeof csv - n, "%sa%d", i ? "," : "", i);
    n += (size_t)snprintf(csv + n, sizeof csv - n, "\n");
    for (int i = 0; i < 65; i++)
        n += (size_t)snprintf(csv + n, sizeof csv - n, "%sv", i ? "," : "");
    snprintf(csv + n, sizeof csv - n, "\n");
    bad_row(csv, LOOKALIKE_ETOOLARGE, "line 2: too large (more than 64 attribute columns)");
}

Test(product_csv, demo_catalogue_rows_become_products)
{
    const char *dir = getenv("DATA_DIR");
    cr_assert_not_null(dir);
    char path[4096], err[200];
    snprintf(path, sizeof path, "%s/products/metadata.csv", dir);
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s", path);
    lookalike_csv_t *c = lookalike_csv_open_file(f, NULL, err, sizeof err);
    cr_assert_eq(lookalike_csv_read_header(c, err, sizeof err), 0, "%s", err);
    int rows = 0, rc;
    while ((rc = lookalike_csv_next(c, err, sizeof err)) == 1) {
        lookalike_product_t p;
        const char *image;
        cr_assert_eq(lookalike_product_from_csv(c, &p, &image, err, sizeof err), 0, "%s", err);
        cr_assert_str_eq(p.id, lookalike_csv_get(c, "image_id"));
        cr_assert_str_eq(p.category, lookalike_csv_get(c, "category"));
        cr_assert_not_null(image);
        cr_assert(strstr(image, p.id), "%s", image);
        /* split, width, height, bytes, sha256 are attributes; the sizes are numbers. */
        cr_assert_eq(p.nattrs, 5);
        cr_assert_str_eq(p.attrs[1].key, "width");
        cr_assert_eq(p.attrs[1].type, LOOKALIKE_ATTR_NUMBER);
        cr_assert_geq(p.attrs[1].num, 400);
        lookalike_product_release(&p);
        rows++;
    }
    cr_assert_eq(rc, 0, "%s", err);
    cr_assert_eq(rows, 713);
    lookalike_csv_free(c);
    fclose(f);
}
