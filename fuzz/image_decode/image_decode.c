/* Fuzz target for the image decode path: any bytes go through the full pipeline (sniff,
 * header caps, decode, colour, resize, orientation, crop) and the RGB accessor. Every input
 * must give a tensor or an error code, never a crash, a hang or a leak. */
#include <stdint.h>
#include <stdlib.h>

#include "embed/embed.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256];
    if (embed_image_global_init("fuzz_image_decode", 1, err, sizeof err) != 0)
        abort();
    embed_image_opts_t o;
    embed_image_opts_init(&o);
    /* Smaller caps keep each run fast; the cap logic itself is what is being exercised. */
    o.max_pixels = 4u * 1024u * 1024u;
    o.resize_short = 64;
    o.crop = 56;
    float tensor[3 * 56 * 56];
    if (embed_image_tensor_buffer(data, size, &o, tensor, err, sizeof err) == 0) {
        for (size_t i = 0; i < sizeof tensor / sizeof tensor[0]; i++)
            if (!(tensor[i] > -100.0f && tensor[i] < 100.0f))
                abort();
    }
    uint8_t *rgb = NULL;
    uint32_t w = 0, h = 0;
    if (embed_image_rgb_buffer(data, size, &o, 32, &rgb, &w, &h, err, sizeof err) == 0) {
        if (w < 1 || h < 1 || w > 32 || h > 32)
            abort();
        free(rgb);
    }
    return 0;
}
