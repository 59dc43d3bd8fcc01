/* main.c — `seqlab <command> ...`: dispatches to one file per subcommand. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../train/dist.h"
#include "cli.h"

static void usage(FILE *f) {
    fprintf(f,
            "seqlab — train, evaluate and run efficient sequence models on CPUs\n"
            "\n"
            "usage: seqlab <command> [options]\n"
            "\n"
            "commands:\n"
            "  train [CONFIG.yaml] [--key value ...]   train a model (seqlab train --help lists every key)\n"
            "  train --resume DIR                      continue a run from its newest checkpoint\n"
            "  eval --run DIR [--split valid|test]     evaluate a run's newest checkpoint\n"
            "  sample --run DIR --prompt TEXT --tokens N [--temperature T --top_k K --seed S]\n"
            "  bench [CONFIG.yaml] [--key value ...] [--steps N]   time training steps, memory, sgemm peak\n"
            "  data prepare --dataset NAME [--src PATH] --out DIR  tokenise a dataset once into token files\n"
            "  plot --runs DIR,... | --bench FILE.jsonl --out FILE.svg   loss curves, speed and memory charts\n"
            "\n"
            "example:\n"
            "  seqlab train configs/shakespeare.yaml --max_step 500 --out runs/shakespeare\n");
}

static int run_command(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (dist_size() > 1 && strcmp(cmd, "train") != 0 && strcmp(cmd, "eval") != 0) {
        fprintf(stderr, "seqlab %s: runs in one process; only train and eval use several MPI ranks (start it "
                        "without mpirun)\n", cmd);
        return EXIT_USAGE;
    }
    if (strcmp(cmd, "train") == 0) return cmd_train(argc - 1, argv + 1);
    if (strcmp(cmd, "eval") == 0) return cmd_eval(argc - 1, argv + 1);
    if (strcmp(cmd, "sample") == 0) return cmd_sample(argc - 1, argv + 1);
    if (strcmp(cmd, "bench") == 0) return cmd_bench(argc - 1, argv + 1);
    if (strcmp(cmd, "data") == 0) return cmd_data(argc - 1, argv + 1);
    if (strcmp(cmd, "plot") == 0) return cmd_plot(argc - 1, argv + 1);
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "seqlab: unknown command '%s'\n\n", cmd);
    usage(stderr);
    return EXIT_USAGE;
}

/* Under mpirun every rank runs the command; a rank that fails stops the
 * others, which may be waiting for it in a collective (dist.h). */
int main(int argc, char **argv) {
    Error err = {0};
    if (dist_init(&argc, &argv, &err)) {
        fprintf(stderr, "seqlab: %s\n", err.msg);
        return 1;
    }
    const int rc = run_command(argc, argv);
    if (rc && rc < EXIT_SIGNAL) dist_abort(rc); /* a failure; after a signal every rank stopped in step */
    dist_finalize();
    return rc;
}
