/* metrics.c — see metrics.h. */
#include "metrics.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int metrics_open(Metrics *m, const char *dir, FILE *console, bool per_char, Error *err) {
    char path[2048];
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    m->jsonl = fopen(path, "a");
    if (!m->jsonl) return err_errno(err, "cannot open '%s'", path);
    m->console = console;
    m->per_char = per_char;
    sb_init(&m->line);
    memset(m->best_seen, 0, sizeof m->best_seen);
    return 0;
}

void metrics_close(Metrics *m) {
    if (m->jsonl) fclose(m->jsonl);
    m->jsonl = NULL;
    sb_free(&m->line);
}

/* Writes the line built, with every non-finite number (printf's nan, -nan,
 * inf, -inf after a key) as JSON's null, and starts the next. */
static void end_line(Metrics *m) {
    static const char *const bad[] = {"-nan", "nan", "-inf", "inf"};
    const char *p = m->line.data ? m->line.data : "";
    while (*p) {
        bool replaced = false;
        for (int i = 0; i < 4 && p[0] == ':' && p[1] == ' '; i++) {
            const size_t n = strlen(bad[i]);
            if (!strncmp(p + 2, bad[i], n) && (p[2 + n] == ',' || p[2 + n] == '}')) {
                fputs(": null", m->jsonl);
                p += 2 + n;
                replaced = true;
                break;
            }
        }
        if (!replaced) fputc(*p++, m->jsonl);
    }
    fflush(m->jsonl);
    sb_free(&m->line);
}

/* The value of "step" in a JSON line, or -1. */
static long long line_step(const char *line) {
    const char *p = strstr(line, "\"step\": ");
    return p ? strtoll(p + 8, NULL, 10) : -1;
}

int metrics_truncate_after(const char *dir, uint64_t step, Error *err) {
    char path[2048], tmp[2100];
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
    FILE *in = fopen(path, "r");
    if (!in) return 0; /* nothing logged yet */
    FILE *out = fopen(tmp, "w");
    if (!out) {
        fclose(in);
        return err_errno(err, "cannot write '%s'", tmp);
    }
    /* Whole lines of any length: a line with many layers' statistics runs
     * past any fixed buffer, and a piece of it kept alone is not JSON. */
    char *line = NULL;
    size_t capacity = 0;
    for (ssize_t n; (n = getline(&line, &capacity, in)) != -1;)
        if (line_step(line) <= (long long)step) fwrite(line, 1, (size_t)n, out);
    free(line);
    int bad = !feof(in); /* a read error, or no memory for a line */
    fclose(in);
    bad |= fflush(out) != 0 || fsync(fileno(out)) != 0;
    bad |= fclose(out) != 0;
    if (bad || rename(tmp, path) != 0) {
        unlink(tmp);
        return err_errno(err, "cannot rewrite '%s'", path);
    }
    return 0;
}

static void format_duration(double s, char *buf, size_t n) {
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(buf, n, "%ldh%02ldm", t / 3600, t / 60 % 60);
    else snprintf(buf, n, "%ldm%02lds", t / 60, t % 60);
}

void metrics_train(Metrics *m, const TrainLine *l) {
    sb_appendf(&m->line,
            "{\"kind\": \"train\", \"step\": %" PRIu64 ", \"loss\": %.17g, \"lr\": %.17g, \"grad_norm\": %.9g, "
            "\"tok_per_s\": %.1f, \"elapsed_s\": %.3f, \"epoch\": %" PRIu64,
            l->step, l->loss, l->lr, l->grad_norm, l->tok_per_s, l->elapsed_s, l->epoch);
    if (l->has_aux) sb_appendf(&m->line, ", \"aux_loss\": %.17g", l->aux_loss);
    if (l->skipped) sb_appendf(&m->line, ", \"skipped\": %d", l->skipped);
    if (l->ranks > 1) sb_appendf(&m->line, ", \"ranks\": %d, \"comm_s\": %.6f", l->ranks, l->comm_s);
    for (int i = 0; i < l->n_stats; i++)
        sb_appendf(&m->line, "%s\"%s\": %.9g", i ? ", " : ", \"stats\": {", l->stat_names[i], l->stat_values[i]);
    sb_appendf(&m->line, "%s}\n", l->n_stats ? "}" : "");
    end_line(m);
    if (!m->console) return;
    char eta[32];
    double per_step = l->step ? l->elapsed_s / (double)l->step : 0.0;
    format_duration(per_step * (double)(l->max_step - l->step), eta, sizeof eta);
    char comm[64] = "";
    if (l->ranks > 1) snprintf(comm, sizeof comm, " | %d ranks, %.1f ms/step in MPI", l->ranks, 1e3 * l->comm_s);
    fprintf(m->console, "step %6" PRIu64 "/%" PRIu64 " | loss %.4f | lr %.3g | grad %.3f | %.0f tok/s%s | ETA %s\n",
            l->step, l->max_step, l->loss, l->lr, l->grad_norm, l->tok_per_s, comm, eta);
    fflush(m->console);
}

double metrics_score(const Metrics *m, double loss, const char **name) {
    *name = m->per_char ? "bpc" : "ppl";
    return m->per_char ? loss / log(2.0) : exp(loss);
}

void metrics_eval(Metrics *m, uint64_t step, const char *split, double loss, uint64_t tokens, double elapsed_s) {
    const char *name;
    double score = metrics_score(m, loss, &name);
    sb_appendf(&m->line,
            "{\"kind\": \"eval\", \"step\": %" PRIu64 ", \"split\": \"%s\", \"loss\": %.17g, \"%s\": %.17g, "
            "\"tokens\": %" PRIu64 ", \"elapsed_s\": %.3f}\n",
            step, split, loss, name, score, tokens, elapsed_s);
    end_line(m);
    if (m->console) {
        fprintf(m->console, "eval  %6" PRIu64 " | %s loss %.4f | %s %.4f | %" PRIu64 " tokens\n", step, split, loss,
                name, score, tokens);
        fflush(m->console);
    }
}

/* The best-so-far slots of a split; values start at -inf (MCC and the correlations can be negative). */
static double *best_of(Metrics *m, const char *split) {
    static const char *const names[3] = {"train", "valid", "test"};
    int k = 0;
    while (k < 3 && strcmp(names[k], split)) k++;
    if (!m->best_seen[k]) {
        for (int i = 0; i < 3; i++) m->best[k][i] = -INFINITY;
        m->best_seen[k] = true;
    }
    return m->best[k];
}

/* Raises best to v and returns it. */
static double raise_to(double *best, double v) { return *best = v > *best ? v : *best; }

/* The recalled value's loss and accuracy, with the best accuracy of the split so far. */
static void eval_recall(Metrics *m, uint64_t step, const char *split, const EvalResult *r, double elapsed_s) {
    double *best = best_of(m, split);
    raise_to(&best[0], r->accuracy);
    sb_appendf(&m->line,
            "{\"kind\": \"eval\", \"step\": %" PRIu64 ", \"split\": \"%s\", \"query_loss\": %.17g, \"accuracy\": %.17g, "
            "\"best_accuracy\": %.17g, \"examples\": %" PRIu64 ", \"elapsed_s\": %.3f}\n",
            step, split, r->loss, r->accuracy, best[0], r->count, elapsed_s);
    end_line(m);
    if (m->console) {
        fprintf(m->console, "eval  %6" PRIu64 " | %s query loss %.4f | accuracy %.4f (best %.4f) | %" PRIu64 " sequences\n",
                step, split, r->loss, r->accuracy, best[0], r->count);
        fflush(m->console);
    }
}

/* wikihop: the windows' loss, the questions' and the windows' accuracy, with the best of each so far. */
static void eval_questions(Metrics *m, uint64_t step, const char *split, const EvalResult *r, double elapsed_s) {
    double *best = best_of(m, split);
    raise_to(&best[0], r->accuracy);
    raise_to(&best[1], r->window_accuracy);
    sb_appendf(&m->line,
            "{\"kind\": \"eval\", \"step\": %" PRIu64 ", \"split\": \"%s\", \"loss\": %.17g, \"accuracy\": %.17g, "
            "\"window_accuracy\": %.17g, \"best_accuracy\": %.17g, \"best_window_accuracy\": %.17g, \"questions\": "
            "%" PRIu64 ", \"windows\": %" PRIu64 ", \"elapsed_s\": %.3f}\n",
            step, split, r->loss, r->accuracy, r->window_accuracy, best[0], best[1], r->count, r->windows, elapsed_s);
    end_line(m);
    if (m->console) {
        fprintf(m->console,
                "eval  %6" PRIu64 " | %s window loss %.4f | accuracy %.4f (best %.4f) | window accuracy %.4f | %" PRIu64
                " questions, %" PRIu64 " windows\n",
                step, split, r->loss, r->accuracy, best[0], r->window_accuracy, r->count, r->windows);
        fflush(m->console);
    }
}

void metrics_eval_result(Metrics *m, uint64_t step, const char *split, const EvalResult *r, double elapsed_s) {
    if (r->recall) {
        eval_recall(m, step, split, r, elapsed_s);
        return;
    }
    if (r->questions) {
        eval_questions(m, step, split, r, elapsed_s);
        return;
    }
    if (r->masked) { /* the masked tokens' loss: perplexity over them */
        sb_appendf(&m->line,
                "{\"kind\": \"eval\", \"step\": %" PRIu64 ", \"split\": \"%s\", \"loss\": %.17g, \"ppl\": %.17g, "
                "\"masked_tokens\": %" PRIu64 ", \"elapsed_s\": %.3f}\n",
                step, split, r->loss, exp(r->loss), r->count, elapsed_s);
        end_line(m);
        if (m->console) {
            fprintf(m->console, "eval  %6" PRIu64 " | %s masked-token loss %.4f | ppl %.4f | %" PRIu64 " masked tokens\n",
                    step, split, r->loss, exp(r->loss), r->count);
            fflush(m->console);
        }
        return;
    }
    if (!r->classes && !r->numbers) {
        metrics_eval(m, step, split, r->loss, r->count, elapsed_s);
        return;
    }
    const char *a = r->classes ? "accuracy" : "pearson", *b = r->classes ? "f1" : "spearman";
    const double x = r->classes ? r->accuracy : r->pearson, y = r->classes ? r->f1 : r->spearman;
    double *best = best_of(m, split);
    const double bx = raise_to(&best[0], x), by = raise_to(&best[1], y), bm = raise_to(&best[2], r->mcc);
    sb_appendf(&m->line,
            "{\"kind\": \"eval\", \"step\": %" PRIu64 ", \"split\": \"%s\", \"loss\": %.17g, \"%s\": %.17g, "
            "\"%s\": %.17g, ",
            step, split, r->loss, a, x, b, y);
    if (r->classes) sb_appendf(&m->line, "\"mcc\": %.17g, ", r->mcc);
    sb_appendf(&m->line, "\"best_%s\": %.17g, \"best_%s\": %.17g, ", a, bx, b, by);
    if (r->classes) sb_appendf(&m->line, "\"best_mcc\": %.17g, ", bm);
    sb_appendf(&m->line, "\"examples\": %" PRIu64 ", \"elapsed_s\": %.3f}\n", r->count, elapsed_s);
    end_line(m);
    if (m->console) {
        fprintf(m->console, "eval  %6" PRIu64 " | %s loss %.4f | %s %.4f | %s %.4f", step, split, r->loss, a, x, b, y);
        if (r->classes) fprintf(m->console, " | mcc %.4f", r->mcc);
        fprintf(m->console, " | best %.4f / %.4f", bx, by);
        if (r->classes) fprintf(m->console, " / %.4f", bm);
        fprintf(m->console, " | %" PRIu64 " examples\n", r->count);
        fflush(m->console);
    }
}
