/* Per-dimension int8 scalar quantiser: training and encoding (distances are in the kernels). */
#include "vindex/sq8.h"

#include "vindex/vindex.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int sq8_alloc(vindex_sq8_t *q, uint32_t dim, char *err, size_t errlen)
{
    q->dim = dim;
    q->bias = malloc(sizeof(float) * dim);
    q->scale = malloc(sizeof(float) * dim);
    if (!q->bias || !q->scale) {
        vindex_sq8_release(q);
        snprintf(err, errlen, "out of memory");
        return VINDEX_ENOMEM;
    }
    return 0;
}

int vindex_sq8_train(vindex_sq8_t *q, uint32_t dim, const float *vecs, size_t n, size_t stride, char *err,
                     size_t errlen)
{
    if (n == 0) {
        snprintf(err, errlen, "sq8: no training vectors");
        return VINDEX_EINVAL;
    }
    int rc = sq8_alloc(q, dim, err, errlen);
    if (rc)
        return rc;
    float *hi = malloc(sizeof(float) * dim);
    if (!hi) {
        vindex_sq8_release(q);
        snprintf(err, errlen, "out of memory");
        return VINDEX_ENOMEM;
    }
    for (uint32_t d = 0; d < dim; d++) {
        q->bias[d] = FLT_MAX;
        hi[d] = -FLT_MAX;
    }
    for (size_t i = 0; i < n; i++) {
        const float *x = vecs + i * stride;
        for (uint32_t d = 0; d < dim; d++) {
            if (x[d] < q->bias[d])
                q->bias[d] = x[d];
            if (x[d] > hi[d])
                hi[d] = x[d];
        }
    }
    for (uint32_t d = 0; d < dim; d++) {
        float range = hi[d] - q->bias[d];
        /* A constant dimension still needs a positive step so encoding never divides by 0. */
        q->scale[d] = range > 1e-30f ? range / 255.0f : 1e-30f;
    }
    free(hi);
    return 0;
}

int vindex_sq8_init_from(vindex_sq8_t *q, uint32_t dim, const float *bias, const float *scale, char *err,
                         size_t errlen)
{
    for (uint32_t d = 0; d < dim; d++) {
        if (!isfinite(bias[d]) || !isfinite(scale[d]) || !(scale[d] > 0)) {
            snprintf(err, errlen, "sq8: bad range for dimension %u", d);
            return VINDEX_ECORRUPT;
        }
    }
    int rc = sq8_alloc(q, dim, err, errlen);
    if (rc)
        return rc;
    memcpy(q->bias, bias, sizeof(float) * dim);
    memcpy(q->scale, scale, sizeof(float) * dim);
    return 0;
}

void vindex_sq8_encode(const vindex_sq8_t *q, const float *x, uint8_t *code)
{
    for (uint32_t d = 0; d < q->dim; d++) {
        float c = (x[d] - q->bias[d]) / q->scale[d] + 0.5f;
        /* Written so that NaN lands on 0 instead of an undefined conversion. */
        code[d] = !(c > 0) ? 0 : c >= 255.0f ? 255 : (uint8_t)c;
    }
}

void vindex_sq8_release(vindex_sq8_t *q)
{
    free(q->bias);
    free(q->scale);
    q->bias = q->scale = NULL;
}
