/* The example server's parts that live outside main.c. */
#ifndef CORE_EXAMPLE_EXAMPLE_H
#define CORE_EXAMPLE_EXAMPLE_H

#include "core/core.h"

/* A raw echo protocol behind "Upgrade: x-echo" on GET /api/upgrade-echo: shows (and lets the
 * integration tests check) the upgrade hook without WebSocket framing. Each upgraded
 * connection gets a thread that echoes bytes until the client closes or the server stops. */
typedef struct example_echo example_echo;

example_echo *example_echo_new(void);
/* Shutdown hook: closes every echo connection and waits for their threads. */
void example_echo_shutdown(void *echo);
void example_echo_free(example_echo *e);
int example_echo_handler(core_http_req *req, void *echo);

#endif
