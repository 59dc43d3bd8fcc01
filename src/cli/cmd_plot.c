/* cmd_plot.c — `seqlab plot`: SVG charts of training runs (loss against step
 * or wall time, one or several run directories) and of seqlab bench output
 * (tokens/s, memory, ... against sequence length, log-log). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../core/file.h"
#include "../plot/chart.h"
#include "cli.h"

typedef struct {
    const char *runs, *bench, *out, *x, *y, *impl, *title;
    bool help;
} PlotArgs;

static int on_extra(void *ctx, const char *name, const char *value, Error *err) {
    PlotArgs *a = ctx;
    (void)err;
    const char **slot = strcmp(name, "runs") == 0    ? &a->runs
                        : strcmp(name, "bench") == 0 ? &a->bench
                        : strcmp(name, "x") == 0     ? &a->x
                        : strcmp(name, "y") == 0     ? &a->y
                        : strcmp(name, "impl") == 0  ? &a->impl
                        : strcmp(name, "title") == 0 ? &a->title
                                                     : NULL;
    if (slot) *slot = value;
    else a->help = true;
    return 0;
}

/* Growable (x, y) points of one series. */
typedef struct {
    char name[160];
    double *x, *y;
    size_t n, cap;
    bool dashed;
} Points;

static int push(Points *p, double x, double y, Error *err) {
    if (p->n == p->cap) {
        size_t cap = p->cap ? 2 * p->cap : 256;
        double *nx = realloc(p->x, cap * sizeof *nx);
        if (nx) p->x = nx;
        double *ny = nx ? realloc(p->y, cap * sizeof *ny) : NULL;
        if (!ny) return err_set(err, "out of memory");
        p->y = ny;
        p->cap = cap;
    }
    p->x[p->n] = x;
    p->y[p->n++] = y;
    return 0;
}

static double number(const JsonValue *obj, const char *key) {
    const JsonValue *v = json_get(obj, key);
    return v && v->type == JSON_NUMBER ? v->number : NAN;
}

/* Calls fn for every JSON object line of path; errors name the file and line. */
typedef int (*LineFn)(void *ctx, const JsonValue *v, Error *err);
static int each_line(const char *path, LineFn fn, void *ctx, Error *err) {
    FileMap m;
    if (file_map(&m, path, NULL, err)) return -1;
    int rc = 0;
    size_t line = 0;
    for (size_t at = 0; at < m.size && !rc; line++) {
        const char *s = (const char *)m.data + at, *nl = memchr(s, '\n', m.size - at);
        size_t len = nl ? (size_t)(nl - s) : m.size - at;
        at += len + 1;
        if (len == 0) continue;
        JsonValue *v;
        if (json_parse(s, len, &v, err)) rc = err_prefix(err, "%s:%zu", path, line + 1);
        else if (v->type == JSON_OBJECT) rc = fn(ctx, v, err), json_free(v);
        else json_free(v);
    }
    file_unmap(&m);
    return rc;
}

/* ---- runs: loss against step or time ---- */

typedef struct {
    Points *train, *valid;
    const char *xkey, *field; /* field: "loss", or an evaluation's metric (accuracy, ...) */
} RunCtx;

static int run_line(void *ctx, const JsonValue *v, Error *err) {
    RunCtx *r = ctx;
    const char *kind = json_str(json_get(v, "kind")), *split = json_str(json_get(v, "split"));
    double x = number(v, r->xkey), y = number(v, r->field);
    if (isnan(y)) return 0; /* a line without the field (a training line for an eval metric) */
    if (kind && strcmp(kind, "train") == 0) return push(r->train, x, y, err);
    if (kind && strcmp(kind, "eval") == 0 && split && strcmp(split, "valid") == 0) return push(r->valid, x, y, err);
    return 0;
}

static int load_runs(const PlotArgs *a, Points *pts, size_t *n, Error *err) {
    char list[4096], *save = NULL;
    snprintf(list, sizeof list, "%s", a->runs);
    const char *xkey = a->x && strcmp(a->x, "time") == 0 ? "elapsed_s" : "step";
    for (char *dir = strtok_r(list, ",", &save); dir && *n + 2 <= 32; dir = strtok_r(NULL, ",", &save)) {
        char path[CFG_PATH + 32];
        snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
        Points *train = &pts[(*n)++], *valid = &pts[(*n)++];
        const char *base = strrchr(dir, '/') && strrchr(dir, '/')[1] ? strrchr(dir, '/') + 1 : dir;
        snprintf(train->name, sizeof train->name, "%s train", base);
        snprintf(valid->name, sizeof valid->name, "%s valid", base);
        valid->dashed = true;
        RunCtx ctx = {train, valid, xkey, a->y ? a->y : "loss"};
        if (each_line(path, run_line, &ctx, err)) return -1;
    }
    return 0;
}

/* ---- bench: a field against sequence length ---- */

typedef struct {
    Points *pts;
    size_t *n;
    const char *impl, *field;
} BenchCtx;

static int bench_line(void *ctx, const JsonValue *v, Error *err) {
    BenchCtx *b = ctx;
    const char *impl = json_str(json_get(v, "impl")), *label = json_str(json_get(v, "label"));
    const JsonValue *failed = json_get(v, "failed");
    if (!impl || strcmp(impl, b->impl) != 0 || (failed && failed->boolean)) return 0;
    if (!label) label = json_str(json_get(v, "mixer"));
    if (!label) label = "?";
    size_t i = 0;
    while (i < *b->n && strcmp(b->pts[i].name, label) != 0) i++;
    if (i == *b->n) {
        if (*b->n == 32) return 0;
        snprintf(b->pts[(*b->n)++].name, sizeof b->pts[0].name, "%s", label);
    }
    return push(&b->pts[i], number(v, "tgt_len"), number(v, b->field), err);
}

static int cmp_x(const void *a, const void *b) {
    const double *p = a, *q = b;
    return p[0] < q[0] ? -1 : p[0] > q[0] ? 1 : p[1] < q[1] ? -1 : p[1] > q[1];
}

/* Sorts a series by x and keeps the median y of repeated x (several runs). */
static void median_by_x(Points *p) {
    double *xy = malloc(2 * (p->n ? p->n : 1) * sizeof *xy);
    if (!xy) return;
    for (size_t i = 0; i < p->n; i++) xy[2 * i] = p->x[i], xy[2 * i + 1] = p->y[i];
    qsort(xy, p->n, 2 * sizeof *xy, cmp_x);
    size_t out = 0;
    for (size_t i = 0; i < p->n;) {
        size_t j = i;
        while (j < p->n && xy[2 * j] == xy[2 * i]) j++;
        size_t mid = i + (j - i) / 2;
        p->x[out] = xy[2 * i];
        p->y[out++] = (j - i) % 2 ? xy[2 * mid + 1] : 0.5 * (xy[2 * mid - 1] + xy[2 * mid + 1]);
        i = j;
    }
    p->n = out;
    free(xy);
}

static int plot(const PlotArgs *a, Error *err) {
    Points pts[32];
    memset(pts, 0, sizeof pts);
    size_t n = 0;
    bool runs = a->runs != NULL;
    const char *field = a->y ? a->y : "tok_per_s";
    BenchCtx bctx = {pts, &n, a->impl ? a->impl : "seqlab", field};
    int rc = runs ? load_runs(a, pts, &n, err) : each_line(a->bench, bench_line, &bctx, err);
    ChartSeries series[32];
    size_t shown = 0;
    for (size_t i = 0; !rc && i < n; i++) {
        if (!runs) median_by_x(&pts[i]);
        if (pts[i].n) /* a field only evaluations have leaves the training series empty */
            series[shown++] = (ChartSeries){pts[i].name, pts[i].x, pts[i].y, pts[i].n, pts[i].dashed};
    }
    bool time = a->x && strcmp(a->x, "time") == 0;
    const char *run_field = a->y ? a->y : "loss";
    Chart c = {.title = a->title ? a->title : runs ? run_field : field,
               .x_label = runs ? (time ? "wall time (s)" : "step") : "sequence length (tokens)",
               .y_label = runs ? (a->y ? run_field : "loss (nats per token)") : field, .log_x = !runs,
               .log_y = !runs, .series = series, .n_series = shown};
    if (!rc) rc = chart_write_svg(&c, a->out, err);
    for (size_t i = 0; i < n; i++) free(pts[i].x), free(pts[i].y);
    return rc;
}

int cmd_plot(int argc, char **argv) {
    static const char *const extra[] = {"runs", "bench", "x", "y", "impl", "title", "help", NULL};
    static const int extra_arg[] = {1, 1, 1, 1, 1, 1, 0};
    PlotArgs args = {0};
    Overrides ov;
    const char *positional[1];
    int n_pos;
    Error err = {0};
    if (cli_parse(argc, argv, extra, extra_arg, on_extra, &args, &ov, positional, &n_pos, 0, &err))
        return cli_fail("plot", &err, EXIT_USAGE);
    for (int i = 0; i < ov.count; i++) { /* --out is also a config key, so it arrives as one */
        if (strcmp(ov.items[i].key, "out") == 0) {
            args.out = ov.items[i].value;
            continue;
        }
        fprintf(stderr, "seqlab plot: option '--%s' is not one of plot's\n", ov.items[i].key);
        return EXIT_USAGE;
    }
    bool bad = !args.out || !args.runs == !args.bench || (args.x && strcmp(args.x, "step") && strcmp(args.x, "time"));
    if (args.help || bad) {
        fprintf(args.help ? stdout : stderr,
                "usage: seqlab plot --runs DIR[,DIR...] [--x step|time] [--y FIELD (loss)] --out FILE.svg [--title T]\n"
                "       seqlab plot --bench FILE.jsonl [--y FIELD (tok_per_s)] [--impl seqlab|pytorch] --out FILE.svg\n"
                "--runs: training (solid) and validation (dashed) loss of each run against step or wall time;\n"
                "  --y another field of the lines (accuracy, best_accuracy, query_loss, f1, ...): where the lines have it.\n"
                "--bench: a field of seqlab bench's JSON lines (tok_per_s, peak_rss_mb, arena_mb, gen_tok_per_s,\n"
                "gflops, ...) against sequence length, log-log, one line per mixer (median of repeated runs).\n"
                "example: seqlab plot --runs runs/softmax,runs/fmm --x time --out loss.svg\n");
        return args.help ? 0 : EXIT_USAGE;
    }
    if (plot(&args, &err)) return cli_fail("plot", &err, 1);
    return 0;
}
