/* Text analysis: strict UTF-8 decoding, case and accent folding, tokenisation.
 *
 * Folding works one code point at a time from constant tables, so it needs no locale and no
 * ICU: Latin-1, Latin Extended-A/B and Latin Extended Additional (every precomposed Vietnamese
 * letter lives there) map to their base ASCII letter, combining marks vanish, Greek and
 * Cyrillic capitals become small letters. A folded code point is never longer in UTF-8 than
 * the original, which is why the folded text fits in a buffer the size of the input. */
#include "lookalike/lookalike.h"

#include <stdio.h>
#include <string.h>

/* Base letter of each code point in U+00C0..U+024F; '.' keeps the code point as it is. */
static const char fold_latin_ext[] = "aaaaaa.ceeeeiiiidnooooo.ouuuuy..aaaaaa.ceeeeiiiidnooooo.ouuuuy.y"
                                     "aaaaaaccccccccddddeeeeeeeeeegggggggghhhhiiiiiiiiii..jjkk.lllllll"
                                     "lllnnnnnn.nnoooooo..rrrrrrssssssssttttttuuuuuuuuuuuuwwyyyzzzzzzs"
                                     "b........d.............i........oo.............uu....zz........."
                                     ".............aaiioouuuuuuuuuu.aaaa....ggkkoooo..j...gg..nnaa...."
                                     "aaaaeeeeiiiioooorrrruuuusstt..hh......aaeeooooooooyy............"
                                     "................";

/* The same for U+1E00..U+1EFF (Latin Extended Additional: Vietnamese tone-marked letters). */
static const char fold_latin_add[] = "aabbbbbbccddddddddddeeeeeeeeeeffgghhhhhhhhhhiiiikkkkkkllllllllmm"
                                     "mmmmnnnnnnnnoooooooopppprrrrrrrrssssssssssttttttttuuuuuuuuuuvvvv"
                                     "wwwwwwwwwwxxxxyyzzzzzzhtwy......aaaaaaaaaaaaaaaaaaaaaaaaeeeeeeee"
                                     "eeeeeeeeiiiioooooooooooooooooooooooouuuuuuuuuuuuuuyyyyyyyy......";

/* Folded stop words, English and Vietnamese. Words that fold onto a content word are left out
 * on purpose: "la" is also "lá" (xanh lá, green) and "do" is also "đỏ" (red). */
static const char *const stop_words[] = {
    "a",  "an", "and", "are", "as",   "at", "be",  "by",  "for", "from", "in",    "is",  "it",    "of",
    "on", "or", "the", "to",  "with", "va", "cua", "cho", "voi", "cac",  "nhung", "mot", "chiec", "cai",
};

int lookalike_utf8_decode(const char *s, size_t len, size_t *pos, uint32_t *cp)
{
    const unsigned char *p = (const unsigned char *)s + *pos;
    size_t left = len - *pos;
    if (left == 0)
        return -1;
    unsigned char c = p[0];
    uint32_t v;
    size_t n;
    if (c < 0x80) {
        *cp = c;
        *pos += 1;
        return 0;
    } else if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
        v = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        v = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        v = c & 0x07;
    } else {
        return -1;
    }
    if (left < n)
        return -1;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return -1;
        v = (v << 6) | (p[i] & 0x3F);
    }
    /* Overlong forms, UTF-16 surrogates and code points past U+10FFFF are not UTF-8. */
    if ((n == 3 && v < 0x800) || (n == 4 && (v < 0x10000 || v > 0x10FFFF)) || (v >= 0xD800 && v <= 0xDFFF))
        return -1;
    *cp = v;
    *pos += n;
    return 0;
}

size_t lookalike_utf8_encode(uint32_t cp, char out[4])
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

enum cp_class { CP_SEP, CP_MARK, CP_WORD };

static enum cp_class classify(uint32_t cp)
{
    if (cp < 0x80) {
        if ((cp >= '0' && cp <= '9') || (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z'))
            return CP_WORD;
        return CP_SEP;
    }
    if ((cp >= 0x0300 && cp <= 0x036F) || (cp >= 0x1AB0 && cp <= 0x1AFF) || (cp >= 0x1DC0 && cp <= 0x1DFF) ||
        (cp >= 0x20D0 && cp <= 0x20FF) || (cp >= 0xFE20 && cp <= 0xFE2F) || cp == 0x200B || cp == 0x200C ||
        cp == 0x200D || cp == 0xFEFF)
        return CP_MARK;
    /* Controls, Latin-1 punctuation and signs, × and ÷, general punctuation through the
     * symbol blocks, CJK punctuation, full-width ASCII punctuation, private use, specials and
     * emoji separate words; every other code point is taken as part of a word. */
    if (cp <= 0xBF || cp == 0xD7 || cp == 0xF7 || (cp >= 0x2000 && cp <= 0x2BFF) ||
        (cp >= 0x2E00 && cp <= 0x2E7F) || (cp >= 0x3000 && cp <= 0x303F) || (cp >= 0xE000 && cp <= 0xF8FF) ||
        (cp >= 0xFE10 && cp <= 0xFE1F) || (cp >= 0xFE30 && cp <= 0xFE6F) || (cp >= 0xFF00 && cp <= 0xFF0F) ||
        (cp >= 0xFF1A && cp <= 0xFF20) || (cp >= 0xFF3B && cp <= 0xFF40) || (cp >= 0xFF5B && cp <= 0xFF65) ||
        (cp >= 0xFFF0 && cp <= 0xFFFF) || (cp >= 0x1F000 && cp <= 0x1FAFF))
        return CP_SEP;
    return CP_WORD;
}

/* Folds one word code point into out (at most 4 bytes); returns the byte count. */
static size_t fold_cp(uint32_t cp, char out[4])
{
    if (cp < 0x80) {
        out[0] = (char)(cp >= 'A' && cp <= 'Z' ? cp + 32 : cp);
        return 1;
    }
    switch (cp) {
    case 0x00DF: /* ß */
    case 0x1E9E:
        memcpy(out, "ss", 2);
        return 2;
    case 0x00C6: /* Æ */
    case 0x00E6:
        memcpy(out, "ae", 2);
        return 2;
    case 0x0152: /* Œ */
    case 0x0153:
        memcpy(out, "oe", 2);
        return 2;
    case 0x00DE: /* Þ */
    case 0x00FE:
        memcpy(out, "th", 2);
        return 2;
    case 0x0132: /* Ĳ */
    case 0x0133:
        memcpy(out, "ij", 2);
        return 2;
    default:
        break;
    }
    if (cp >= 0xC0 && cp <= 0x24F && fold_latin_ext[cp - 0xC0] != '.') {
        out[0] = fold_latin_ext[cp - 0xC0];
        return 1;
    }
    if (cp >= 0x1E00 && cp <= 0x1EFF && fold_latin_add[cp - 0x1E00] != '.') {
        out[0] = fold_latin_add[cp - 0x1E00];
        return 1;
    }
    if (cp >= 0x0391 && cp <= 0x03A9 && cp != 0x03A2)
        cp += 0x20; /* Greek capitals */
    else if (cp >= 0x0410 && cp <= 0x042F)
        cp += 0x20; /* Cyrillic А..Я */
    else if (cp >= 0x0400 && cp <= 0x040F)
        cp += 0x50; /* Cyrillic Ѐ..Џ */
    else if (cp >= 0xFF21 && cp <= 0xFF3A)
        cp = cp - 0xFF21 + 'a'; /* full-width Latin capitals */
    else if (cp >= 0xFF41 && cp <= 0xFF5A)
        cp = cp - 0xFF41 + 'a';
    else if (cp >= 0xFF10 && cp <= 0xFF19)
        cp = cp - 0xFF10 + '0';
    return lookalike_utf8_encode(cp, out);
}

static void set_err(char *err, size_t errlen, const char *fmt, size_t at)
{
    if (err && errlen)
        snprintf(err, errlen, fmt, at);
}

int lookalike_text_fold(const char *in, size_t len, char *out, size_t outcap, size_t *outlen, char *err,
                        size_t errlen)
{
    if (outcap < len + 1) {
        set_err(err, errlen, "fold: output buffer smaller than input (%zu bytes)", len);
        return LOOKALIKE_EINVAL;
    }
    size_t pos = 0, o = 0;
    while (pos < len) {
        size_t at = pos;
        uint32_t cp;
        if (lookalike_utf8_decode(in, len, &pos, &cp) != 0) {
            set_err(err, errlen, "invalid UTF-8 at byte %zu", at);
            return LOOKALIKE_EUTF8;
        }
        enum cp_class c = classify(cp);
        if (c == CP_MARK)
            continue;
        if (c == CP_SEP) {
            size_t n = pos - at;
            memcpy(out + o, in + at, n);
            o += n;
            continue;
        }
        o += fold_cp(cp, out + o);
    }
    out[o] = '\0';
    if (outlen)
        *outlen = o;
    return 0;
}

int lookalike_text_is_stop_word(const char *tok, size_t len)
{
    for (size_t i = 0; i < sizeof stop_words / sizeof stop_words[0]; i++)
        if (strlen(stop_words[i]) == len && memcmp(stop_words[i], tok, len) == 0)
            return 1;
    return 0;
}

/* Hands the finished token to the callback unless it is a stop word that was asked away. */
static int emit(const lookalike_text_opts_t *opts, const char *tok, size_t len, uint32_t index,
                lookalike_token_fn fn, void *ud, uint32_t *count)
{
    if (len == 0)
        return 0;
    if (opts && opts->stop_words && lookalike_text_is_stop_word(tok, len))
        return 0;
    (*count)++;
    return fn(tok, len, index, ud);
}

int lookalike_text_tokenize(const char *s, size_t len, const lookalike_text_opts_t *opts,
                            lookalike_token_fn fn, void *ud, char *err, size_t errlen)
{
    char tok[LOOKALIKE_TOKEN_MAX + 4];
    size_t tlen = 0;
    int truncated = 0;
    uint32_t count = 0, max_tokens = opts && opts->max_tokens ? opts->max_tokens : UINT32_MAX;
    size_t pos = 0;
    while (pos < len) {
        size_t at = pos;
        uint32_t cp;
        if (lookalike_utf8_decode(s, len, &pos, &cp) != 0) {
            set_err(err, errlen, "invalid UTF-8 at byte %zu", at);
            return LOOKALIKE_EUTF8;
        }
        enum cp_class c = classify(cp);
        if (c == CP_MARK)
            continue;
        if (c == CP_SEP) {
            if (count >= max_tokens)
                return 0;
            int rc = emit(opts, tok, tlen, count, fn, ud, &count);
            if (rc)
                return rc > 0 ? 0 : rc;
            tlen = 0;
            truncated = 0;
            continue;
        }
        char buf[4];
        size_t n = fold_cp(cp, buf);
        /* Over-long words keep their first LOOKALIKE_TOKEN_MAX bytes, cut at a code point. */
        if (truncated || tlen + n > LOOKALIKE_TOKEN_MAX) {
            truncated = 1;
            continue;
        }
        memcpy(tok + tlen, buf, n);
        tlen += n;
    }
    if (count >= max_tokens)
        return 0;
    int rc = emit(opts, tok, tlen, count, fn, ud, &count);
    return rc > 0 ? 0 : rc;
}
