/* Fuzz target: the ONNX loader (protobuf wire decoding, graph building, op validation and
 * batch-1 shape planning) must reject hostile bytes with an error, never crash or hang. */
#include "embed/embed.h"

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256];
    embed_model_options opt = {.threads = 1, .reference = 1};
    embed_model *m = embed_model_load_buffer(data, size, &opt, err, sizeof(err));
    embed_model_free(m);
    return 0;
}
