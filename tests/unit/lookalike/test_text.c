#include <criterion/criterion.h>
#include <string.h>

#include "lookalike/lookalike.h"

static char *fold(const char *s)
{
    static char out[1024];
    char err[128];
    size_t n = 0;
    int rc = lookalike_text_fold(s, strlen(s), out, sizeof out, &n, err, sizeof err);
    cr_assert_eq(rc, 0, "fold(%s): %s", s, err);
    cr_assert_eq(n, strlen(out));
    return out;
}

Test(text, fold_vietnamese_case_and_accents)
{
    cr_assert_str_eq(fold("áo thun"), "ao thun");
    cr_assert_str_eq(fold("Áo Thun"), "ao thun");
    cr_assert_str_eq(fold("ao thun"), "ao thun");
    cr_assert_str_eq(fold("ÁO THUN"), "ao thun");
    /* Decomposed form: a + combining acute. */
    cr_assert_str_eq(fold("a\xcc\x81o thun"), "ao thun");
    cr_assert_str_eq(fold("Đầm đỏ"), "dam do");
    cr_assert_str_eq(fold("Quần jean xanh dương"), "quan jean xanh duong");
    cr_assert_str_eq(fold("Giày thể thao Nữ"), "giay the thao nu");
    cr_assert_str_eq(fold("Ưu đãi Ơn"), "uu dai on");
}

Test(text, fold_every_vietnamese_letter)
{
    /* All tone-marked forms of each Vietnamese vowel, capital and small, and đ/Đ. */
    static const struct {
        const char *letters;
        char base;
    } groups[] = {
        {"aàáảãạăằắẳẵặâầấẩẫậAÀÁẢÃẠĂẰẮẲẴẶÂẦẤẨẪẬ", 'a'},
        {"eèéẻẽẹêềếểễệEÈÉẺẼẸÊỀẾỂỄỆ", 'e'},
        {"iìíỉĩịIÌÍỈĨỊ", 'i'},
        {"oòóỏõọôồốổỗộơờớởỡợOÒÓỎÕỌÔỒỐỔỖỘƠỜỚỞỠỢ", 'o'},
        {"uùúủũụưừứửữựUÙÚỦŨỤƯỪỨỬỮỰ", 'u'},
        {"yỳýỷỹỵYỲÝỶỸỴ", 'y'},
        {"đĐdD", 'd'},
    };
    for (size_t g = 0; g < sizeof groups / sizeof groups[0]; g++) {
        const char *s = groups[g].letters;
        size_t len = strlen(s), pos = 0, count = 0;
        while (pos < len) {
            size_t at = pos;
            uint32_t cp;
            cr_assert_eq(lookalike_utf8_decode(s, len, &pos, &cp), 0);
            char one[8] = {0}, out[8];
            memcpy(one, s + at, pos - at);
            size_t n;
            cr_assert_eq(lookalike_text_fold(one, pos - at, out, sizeof out, &n, NULL, 0), 0);
            cr_assert_eq(n, 1, "U+%04X folded to %zu bytes", cp, n);
            cr_assert_eq(out[0], groups[g].base, "U+%04X folded to '%c'", cp, out[0]);
            count++;
        }
        cr_assert_gt(count, 3);
    }
}

Test(text, fold_latin_and_others)
{
    cr_assert_str_eq(fold("Crème Brûlée"), "creme brulee");
    cr_assert_str_eq(fold("Straße"), "strasse");
    cr_assert_str_eq(fold("Ærø Œuvre"), "aero oeuvre");
    cr_assert_str_eq(fold("Łódź"), "lodz");
    cr_assert_str_eq(fold("ПРИВЕТ Ёж"), "привет ёж");
    cr_assert_str_eq(fold("ΑΒΓ"), "αβγ");
    cr_assert_str_eq(fold("ＡＢＣ１"), "abc1");
    /* Separators are kept as they are. */
    cr_assert_str_eq(fold("A-B, C!"), "a-b, c!");
}

Test(text, fold_rejects_invalid_utf8)
{
    static const char *bad[] = {
        "\xff",
        "abc\xc3",
        "\xc0\xaf",
        "\xe0\x80\xaf",
        "\xed\xa0\x80",
        "\xf4\x90\x80\x80",
        "\xf8\x88\x80\x80\x80",
        "a\x80",
        "\xe2\x82",
        "\xc3\x28",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char out[64], err[128] = "";
        int rc = lookalike_text_fold(bad[i], strlen(bad[i]), out, sizeof out, NULL, err, sizeof err);
        cr_assert_eq(rc, LOOKALIKE_EUTF8, "case %zu", i);
        cr_assert(strstr(err, "invalid UTF-8 at byte"), "case %zu: %s", i, err);
    }
    char out[64], err[128];
    cr_assert_eq(lookalike_text_fold("ab\xff", 3, out, sizeof out, NULL, err, sizeof err), LOOKALIKE_EUTF8);
    cr_assert_str_eq(err, "invalid UTF-8 at byte 2");
}

Test(text, fold_needs_room)
{
    char out[4];
    cr_assert_eq(lookalike_text_fold("abcd", 4, out, sizeof out, NULL, NULL, 0), LOOKALIKE_EINVAL);
}

Test(text, utf8_round_trip)
{
    static const uint32_t cps[] = {0x41, 0xE9, 0x7FF, 0x800, 0x1EA1, 0xFFFD, 0x10000, 0x10FFFF};
    for (size_t i = 0; i < sizeof cps / sizeof cps[0]; i++) {
        char buf[4];
        size_t n = lookalike_utf8_encode(cps[i], buf), pos = 0;
        uint32_t back;
        cr_assert_eq(lookalike_utf8_decode(buf, n, &pos, &back), 0);
        cr_assert_eq(back, cps[i]);
        cr_assert_eq(pos, n);
    }
}

typedef struct {
    char toks[32][LOOKALIKE_TOKEN_MAX + 1];
    int n;
} toks_t;

static int collect(const char *tok, size_t len, uint32_t index, void *ud)
{
    toks_t *t = ud;
    cr_assert_eq(index, (uint32_t)t->n);
    cr_assert_leq(len, LOOKALIKE_TOKEN_MAX);
    memcpy(t->toks[t->n], tok, len);
    t->toks[t->n][len] = '\0';
    t->n++;
    return t->n == 32 ? 1 : 0;
}

static toks_t tokenize(const char *s, const lookalike_text_opts_t *opts)
{
    toks_t t = {0};
    char err[128];
    int rc = lookalike_text_tokenize(s, strlen(s), opts, collect, &t, err, sizeof err);
    cr_assert_eq(rc, 0, "%s", err);
    return t;
}

Test(text, tokenize_splits_on_punctuation)
{
    toks_t t = tokenize("  Áo thun (nam), size-XL; 100% cotton!! giá: 199.000đ ", NULL);
    const char *want[] = {"ao", "thun", "nam", "size", "xl", "100", "cotton", "gia", "199", "000d"};
    cr_assert_eq(t.n, 10);
    for (int i = 0; i < t.n; i++)
        cr_assert_str_eq(t.toks[i], want[i]);
}

Test(text, tokenize_marks_do_not_split_and_symbols_do)
{
    toks_t t = tokenize("a\xcc\x81o\xe2\x80\x94thun\xf0\x9f\x98\x80x\xc2\xa0y", NULL);
    cr_assert_eq(t.n, 4);
    cr_assert_str_eq(t.toks[0], "ao");
    cr_assert_str_eq(t.toks[1], "thun");
    cr_assert_str_eq(t.toks[2], "x");
    cr_assert_str_eq(t.toks[3], "y");
    toks_t cjk = tokenize("服装 T恤", NULL);
    cr_assert_eq(cjk.n, 2);
    cr_assert_str_eq(cjk.toks[1], "t恤");
}

Test(text, tokenize_stop_words_off_by_default)
{
    toks_t t = tokenize("the shirt of the year và quần", NULL);
    cr_assert_eq(t.n, 7);
    lookalike_text_opts_t o = {.stop_words = 1};
    toks_t s = tokenize("the shirt of the year và quần", &o);
    cr_assert_eq(s.n, 3);
    cr_assert_str_eq(s.toks[0], "shirt");
    cr_assert_str_eq(s.toks[1], "year");
    cr_assert_str_eq(s.toks[2], "quan");
    /* Words that fold onto colour names are not stop words. */
    toks_t c = tokenize("xanh lá đỏ", &o);
    cr_assert_eq(c.n, 3);
}

Test(text, tokenize_caps)
{
    char longw[300];
    memset(longw, 'x', 299);
    longw[299] = '\0';
    toks_t t = tokenize(longw, NULL);
    cr_assert_eq(t.n, 1);
    cr_assert_eq(strlen(t.toks[0]), LOOKALIKE_TOKEN_MAX);
    /* A long multi-byte word is cut at a code point boundary, and the rest is ignored. */
    char viet[400] = "";
    for (int i = 0; i < 40; i++)
        strncat(viet, "日", sizeof viet - strlen(viet) - 1);
    strncat(viet, " next", sizeof viet - strlen(viet) - 1);
    toks_t v = tokenize(viet, NULL);
    cr_assert_eq(v.n, 2);
    cr_assert_eq(strlen(v.toks[0]), 63);
    cr_assert_str_eq(v.toks[1], "next");
    lookalike_text_opts_t o = {.max_tokens = 2};
    toks_t m = tokenize("a b c d", &o);
    cr_assert_eq(m.n, 2);
}

static int stop_at_error(const char *tok, size_t len, uint32_t index, void *ud)
{
    (void)tok;
    (void)len;
    (void)ud;
    return index == 1 ? -42 : 0;
}

Test(text, tokenize_errors)
{
    char err[128];
    cr_assert_eq(lookalike_text_tokenize("a b c", 5, NULL, stop_at_error, NULL, err, sizeof err), -42);
    toks_t t = {0};
    cr_assert_eq(lookalike_text_tokenize("ok \xc3", 4, NULL, collect, &t, err, sizeof err), LOOKALIKE_EUTF8);
    cr_assert_str_eq(err, "invalid UTF-8 at byte 3");
}
