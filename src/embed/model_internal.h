/* What the engine's own tests and the conformance runner reach past the public API for: the
 * graph and the oneDNN engine of a loaded model, to compile plans with several bound inputs. */
#ifndef EMBED_MODEL_INTERNAL_H
#define EMBED_MODEL_INTERNAL_H

#include "embed/plan.h"

const eg_graph *embed_model_graph(const embed_model *m);
dnnl_engine_t embed_model_engine(const embed_model *m);
int embed_model_threads(const embed_model *m);

#endif
