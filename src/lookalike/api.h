/* The HTTP API of `lookalike serve` (api.c) and the subcommands (cmd_*.c), private to the
 * lookalike program. */
#ifndef LOOKALIKE_API_H
#define LOOKALIKE_API_H

#include "core/core.h"
#include "lookalike/lookalike.h"

/* What every API route handler gets; borrowed, must outlive the server. */
typedef struct {
    lookalike_svc_t *svc;
    const char *api_key; /* NULL or "": write endpoints are open */
} lookalike_api_t;

/* Adds every /api route to srv (before it starts). 0 or -1 with a message. */
int lookalike_api_routes(lookalike_api_t *api, core_http_server *srv, char *err, size_t errlen);

/* Subcommands: argv[0] is the subcommand's name; they return the process exit code. */
int lookalike_cmd_serve(int argc, char **argv);
int lookalike_cmd_ingest(int argc, char **argv);
int lookalike_cmd_create_collection(int argc, char **argv);
int lookalike_cmd_search(int argc, char **argv);
int lookalike_cmd_stats(int argc, char **argv);
int lookalike_cmd_export(int argc, char **argv);
int lookalike_cmd_embed(int argc, char **argv);

/* GET /api/openapi.json: the OpenAPI description of the routes above (api_openapi.c). */
int lookalike_api_openapi(core_http_req *req, void *ud);

/* The model `serve` and `ingest` use when none is given (set by the build from MODELS_DIR). */
#ifndef LOOKALIKE_DEFAULT_MODEL
#define LOOKALIKE_DEFAULT_MODEL "../shared/models/mobilenet_v1_0.75_224.onnx"
#endif
/* The web page `serve` offers at / when no --web is given (set by the build to the source
 * tree's web/ directory). */
#ifndef LOOKALIKE_DEFAULT_WEB
#define LOOKALIKE_DEFAULT_WEB "web"
#endif

#endif
