/* run.c — loading a run directory (config.yaml, vocab.json, newest
 * checkpoint) for eval, sample and resume. */
#include <string.h>
#include <sys/stat.h>

#include "../core/gemm.h"
#include "../core/threads.h"
#include "../tasks/task.h"
#include "../train/dist.h"
#include "cli.h"

int vocab_path(const char *dir, char *out, size_t n) { return snprintf(out, n, "%s/vocab.json", dir); }

/* threads 0: the cores this process may run on; when mpirun did not bind
 * each rank to its own cores, those are shared by the ranks on the machine. */
static int default_threads(void) {
    const int allowed = threads_allowed();
    if (allowed < threads_cores()) return allowed;
    return allowed / dist_local_size() > 0 ? allowed / dist_local_size() : 1;
}

int cli_setup_compute(const Config *c, Error *err) {
    threads_set(c->threads > 0 ? c->threads : default_threads());
    Precision p;
    if (precision_parse(c->precision, &p)) return err_set(err, "key 'precision': unknown value '%s'", c->precision);
    return gemm_set_precision(p, err);
}

int run_load(LoadedRun *r, const char *dir, const Overrides *ov, bool with_optim, Error *err) {
    memset(r, 0, sizeof *r);
    char path[2048];
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) return err_set(err, "run directory '%s' does not exist", dir);
    if (ckpt_latest(dir, r->ckpt_path, sizeof r->ckpt_path, err)) return -1;
    snprintf(path, sizeof path, "%s/config.yaml", dir);
    config_defaults(&r->cfg);
    if (config_load_yaml(&r->cfg, path, err)) return -1;
    if (ov && cli_apply_overrides(&r->cfg, ov, err)) return -1;
    snprintf(r->cfg.out, sizeof r->cfg.out, "%s", dir); /* the run stays where it is */
    if (config_finalize(&r->cfg, err)) return -1;
    vocab_path(dir, path, sizeof path);
    if (tokenizer_load(&r->tok, path, err)) return -1;
    if (model_build(&r->model, &r->cfg, task_vocab(&r->cfg, &r->tok), err)) return -1;
    if (with_optim && optim_build(&r->optim, &r->cfg, &r->model.params, err)) return -1;
    return ckpt_load(r->ckpt_path, &r->model, with_optim ? &r->optim : NULL, &r->state, err);
}

void run_free(LoadedRun *r) {
    optim_free(&r->optim);
    model_free(&r->model);
    tokenizer_free(&r->tok);
}
