/* bench_grid.c — see bench_grid.h. A grid point is the same command line
 * with --mixers/--lengths/--tokens replaced by --mixer NAME (and the item's
 * keys), --tgt_len T --max_len T --batch_size tokens/T; it runs as a child
 * process so that each point's peak RSS is its own. */
#include "bench_grid.h"

#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../core/gemm.h"
#include "../core/json.h"
#include "cli.h"

extern char **environ;

void bench_report(FILE *f, const Config *c, const Model *m, const BenchResult *r, double peak, double gen) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    const double med = bench_median(r->step, r->steps), gf = r->flops / med * 1e-9;
    fprintf(f, "seqlab bench: %s %s T=%d B=%d, %zu params | step %.3f s (min %.3f; forward %.3f, backward %.3f) | "
               "%.0f tok/s | %.1f GFLOP/s = %.0f%% of sgemm %.1f | generation %.0f tok/s | memory %.0f MiB, peak "
               "RSS %.0f MiB | %s, %s\n",
            c->mixer, c->arch, c->tgt_len, c->batch_size, m->params.total, med, bench_min(r->step, r->steps),
            bench_median(r->forward, r->steps), bench_median(r->backward, r->steps), r->tokens / med, gf,
            100.0 * gf / peak, peak, gen, r->arena_bytes / 1048576.0, ru.ru_maxrss / 1024.0, c->precision,
            gemm_backend());
}

/* "seqlab" and the bench command line (argv[0] is "bench") without the
 * grid options (both "--opt v" and "--opt=v"). */
static int base_args(int argc, char **argv, char **out) {
    static const char *const grid[] = {"--mixers", "--lengths", "--tokens"};
    int n = 0;
    out[n++] = "seqlab";
    for (int i = 0; i < argc; i++) {
        bool skip = false;
        for (size_t g = 0; g < 3 && !skip; g++) {
            size_t len = strlen(grid[g]);
            if (strcmp(argv[i], grid[g]) == 0) skip = true, i++; /* and its value */
            else if (strncmp(argv[i], grid[g], len) == 0 && argv[i][len] == '=') skip = true;
        }
        if (!skip) out[n++] = argv[i];
    }
    return n;
}

/* Appends "--key value" pairs from a mixer item "name:key=value:key=value". */
static int item_args(char *item, char **out, int n, Error *err) {
    char *save = NULL, *name = strtok_r(item, ":", &save);
    out[n++] = "--mixer";
    out[n++] = name;
    for (char *kv = strtok_r(NULL, ":", &save); kv; kv = strtok_r(NULL, ":", &save)) {
        char *eq = strchr(kv, '=');
        if (!eq) return err_set(err, "--mixers item '%s': write key=value after the mixer name", kv), -1;
        *eq = 0;
        for (char *p = eq + 1; *p; p++)
            if (*p == '+') *p = ','; /* kernels=elu+elu_flip */
        static char flags[64][80];
        static int used;
        snprintf(flags[used % 64], sizeof flags[0], "--%s", kv);
        out[n++] = flags[used++ % 64];
        out[n++] = eq + 1;
    }
    return n;
}

/* Runs argv as a child with its stdout captured into *json (owned). Returns the exit status. */
static int run_child(char **argv, char **json) {
    int fd[2];
    *json = NULL;
    if (pipe(fd) != 0) return -1;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fd[1], 1);
    posix_spawn_file_actions_addclose(&fa, fd[0]);
    pid_t pid;
    int rc = posix_spawn(&pid, "/proc/self/exe", &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(fd[1]);
    size_t len = 0, cap = 0;
    char buf[4096];
    for (ssize_t k; !rc && (k = read(fd[0], buf, sizeof buf)) > 0;) {
        if (len + (size_t)k + 1 > cap) {
            cap = 2 * (len + (size_t)k + 1);
            char *p = realloc(*json, cap);
            if (!p) break;
            *json = p;
        }
        memcpy(*json + len, buf, (size_t)k);
        len += (size_t)k;
        (*json)[len] = 0;
    }
    close(fd[0]);
    int status = 0;
    if (!rc && waitpid(pid, &status, 0) < 0) return -1;
    return rc ? -1 : WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

typedef struct {
    char label[96];
    long T;
    JsonValue *result; /* owned; NULL when the point failed */
    int status;
} Point;

static double field(const Point *p, const char *name) {
    const JsonValue *v = json_get(p->result, name);
    return v && v->type == JSON_NUMBER ? v->number : 0.0;
}

static void print_table(const Point *pts, size_t n) {
    fprintf(stderr, "\n%-36s %7s %6s %10s %8s %8s %8s %6s %10s %9s %9s\n", "mixer", "T", "batch", "tok/s", "fwd s",
            "bwd s", "GFLOP/s", "%peak", "gen tok/s", "arena MiB", "RSS MiB");
    for (size_t i = 0; i < n; i++) {
        const Point *p = &pts[i];
        if (!p->result) {
            fprintf(stderr, "%-36s %7ld   failed (exit status %d)\n", p->label, p->T, p->status);
            continue;
        }
        fprintf(stderr, "%-36s %7ld %6.0f %10.0f %8.3f %8.3f %8.1f %5.0f%% %10.0f %9.0f %9.0f\n", p->label, p->T,
                field(p, "batch_size"), field(p, "tok_per_s"), field(p, "forward_s"), field(p, "backward_s"),
                field(p, "gflops"), 100.0 * field(p, "peak_fraction"), field(p, "gen_tok_per_s"), field(p, "arena_mb"),
                field(p, "peak_rss_mb"));
    }
}

/* One grid point: builds its command line, runs it, keeps its JSON. */
static void run_point(char **base, int n_base, const char *item, long T, long tokens, Point *p) {
    char *argv[256], copy[256], tgt[32], batch[32];
    memcpy(argv, base, (size_t)n_base * sizeof *argv);
    snprintf(copy, sizeof copy, "%s", item);
    snprintf(p->label, sizeof p->label, "%s", item);
    p->T = T;
    Error err = {0};
    int n = item_args(copy, argv, n_base, &err);
    if (n < 0) {
        fprintf(stderr, "seqlab bench: %s\n", err.msg);
        p->status = EXIT_USAGE;
        return;
    }
    snprintf(tgt, sizeof tgt, "%ld", T);
    snprintf(batch, sizeof batch, "%ld", tokens / T);
    const char *tail[] = {"--tgt_len", tgt, "--max_len", tgt, "--batch_size", batch};
    for (size_t i = 0; i < 6; i++) argv[n++] = (char *)tail[i];
    argv[n] = NULL;
    char *json;
    p->status = run_child(argv, &json);
    if (p->status == 0 && json && !json_parse(json, strlen(json), &p->result, &err)) {
        fputs(json, stdout);
        fflush(stdout);
    }
    free(json);
}

static size_t split_list(char *s, char **items, size_t max) {
    size_t n = 0;
    char *save = NULL;
    for (char *t = strtok_r(s, ",", &save); t && n < max; t = strtok_r(NULL, ",", &save)) items[n++] = t;
    return n;
}

int bench_grid(int argc, char **argv, const BenchArgs *a) {
    char mixers[1024], lengths[256], *mix[32], *len[32], *base[200];
    snprintf(mixers, sizeof mixers, "%s", a->mixers ? a->mixers : "softmax");
    snprintf(lengths, sizeof lengths, "%s", a->lengths ? a->lengths : "256");
    size_t n_mix = split_list(mixers, mix, 32), n_len = split_list(lengths, len, 32);
    if (a->tokens <= 0 || argc > 180) {
        fprintf(stderr, "seqlab bench: a grid needs --tokens N (tokens per step; batch_size = N / length)\n");
        return EXIT_USAGE;
    }
    int n_base = base_args(argc, argv, base);
    Point *pts = calloc(n_mix * n_len, sizeof *pts);
    int failed = 0;
    for (size_t i = 0; pts && i < n_mix; i++)
        for (size_t j = 0; j < n_len; j++) {
            long T = atol(len[j]);
            Point *p = &pts[i * n_len + j];
            if (T <= 0 || a->tokens % T) {
                fprintf(stderr, "seqlab bench: length '%s' must be positive and divide --tokens %ld\n", len[j], a->tokens);
                free(pts);
                return EXIT_USAGE;
            }
            run_point(base, n_base, mix[i], T, a->tokens, p);
            failed += !p->result;
        }
    if (pts) print_table(pts, n_mix * n_len);
    for (size_t i = 0; pts && i < n_mix * n_len; i++) json_free(pts[i].result);
    free(pts);
    return failed ? 1 : 0;
}
