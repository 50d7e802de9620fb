/* What the engine's own tests and the conformance runner reach past the public API for: the
 * graph and the oneDNN engine of a loaded model, to compile plans with several bound inputs. */
#ifndef EMBED_MODEL_INTERNAL_H
#define EMBED_MODEL_INTERNAL_H

#include "embed/plan.h"

/* embed_model_load_buffer() that also returns the EMBED_* code of a failure in *rc. */
embed_model *embed_model_load_rc(const void *data, size_t len, const embed_model_options *opt, char *err,
                                 size_t errlen, int *rc);
const eg_graph *embed_model_graph(const embed_model *m);
dnnl_engine_t embed_model_engine(const embed_model *m);
int embed_model_threads(const embed_model *m);

#endif
