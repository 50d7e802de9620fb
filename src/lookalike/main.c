/* lookalike: similar-product search. One binary, one subcommand per job. */
#include "lookalike/api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *help;
} subcommand_t;

static const subcommand_t subcommands[] = {
    {"serve", lookalike_cmd_serve, "serve the JSON API over HTTP"},
    {"ingest", lookalike_cmd_ingest, "add a folder of photos (with optional metadata) to a collection"},
    {"create-collection", lookalike_cmd_create_collection, "create a collection"},
    {"search", lookalike_cmd_search, "search by photo, text, product or filters from the shell"},
    {"stats", lookalike_cmd_stats, "collections and product counts of a data directory"},
    {"export", lookalike_cmd_export, "dump a collection as JSON lines (and its photos) for re-ingest"},
    {"embed", lookalike_cmd_embed, "print the embedding or the top classes of photos (no server needed)"},
};

static void usage(FILE *f)
{
    fprintf(f, "lookalike: similar-product search (image, text, attributes)\n"
               "usage: lookalike <command> [--flag value]...   (lookalike <command> --help)\n\ncommands:\n");
    for (size_t i = 0; i < sizeof subcommands / sizeof *subcommands; i++)
        fprintf(f, "  %-18s %s\n", subcommands[i].name, subcommands[i].help);
}

int main(int argc, char **argv)
{
    /* libgomp reads OMP_WAIT_POLICY once, before main, and its default spins at every layer
     * barrier of a single-photo inference: on cores shared with other work that costs 5x
     * (docs/embed-engine.md, Threads). So the process restarts itself once with the passive
     * policy unless the user chose one; if the restart fails it runs on as it is. */
    if (!getenv("OMP_WAIT_POLICY") && setenv("OMP_WAIT_POLICY", "passive", 1) == 0)
        execv("/proc/self/exe", argv);
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    for (size_t i = 0; i < sizeof subcommands / sizeof *subcommands; i++)
        if (!strcmp(argv[1], subcommands[i].name))
            return subcommands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "lookalike: unknown command \"%s\"\n", argv[1]);
    usage(stderr);
    return 2;
}
