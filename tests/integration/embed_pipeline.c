/* Helper for embed_pipeline.sh: writes the tensors of our image pipeline (ImageNet
 * normalisation, 256/224) for each IMAGE into OUT.f32 as raw float32, N x 3 x 224 x 224. */
#include <stdio.h>
#include <stdlib.h>

#include "embed/embed.h"

int main(int argc, char **argv)
{
    char err[512];
    if (argc < 3) {
        fprintf(stderr, "usage: embed_pipeline OUT.f32 IMAGE...\n");
        return 2;
    }
    if (embed_image_global_init(argv[0], 0, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    embed_image_opts_t io;
    embed_image_opts_init(&io);
    size_t len = embed_image_tensor_len(&io);
    float *t = malloc(len * sizeof(float));
    FILE *f = fopen(argv[1], "wb");
    int rc = 1;
    if (!t || !f) {
        fprintf(stderr, "%s: cannot write\n", argv[1]);
        goto fail;
    }
    for (int i = 2; i < argc; i++) {
        if (embed_image_tensor_file(argv[i], &io, t, err, sizeof err) != 0) {
            fprintf(stderr, "%s\n", err);
            goto fail;
        }
        if (fwrite(t, sizeof(float), len, f) != len) {
            fprintf(stderr, "%s: write failed\n", argv[1]);
            goto fail;
        }
    }
    rc = 0;
fail:
    if (f && fclose(f) != 0)
        rc = 1;
    free(t);
    return rc;
}
