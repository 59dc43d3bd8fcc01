/* test_listops.c — the ListOps generator (src/tasks/listops.c) against the
 * oracles of spec tasks-synthetic-lra.md §d: every tree's value recomputed
 * by an independent stack evaluator of its tokens (LO-1), the token count of
 * the release's tokenisation (parentheses removed, ']' as X) equal to the
 * generator's length and inside (500, 2000) (LO-2), every label seen, and the
 * written files: header, distinct trees, the split sizes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../src/tasks/listops.h"
#include "test.h"

/* The value of a tree's tokens by a stack: an operator pushes a mark, a digit
 * its value, 'X' pops down to the mark and pushes the operator's result. */
static int evaluate(const char *text, size_t *tokens) {
    int stack[8192], ops[8192], marks[8192], sp = 0, mp = 0;
    char buf[16];
    *tokens = 0;
    for (const char *p = text; *p;) {
        while (*p == ' ' || *p == '(' || *p == ')') p++;
        if (!*p) break;
        size_t n = strcspn(p, " ()");
        snprintf(buf, sizeof buf, "%.*s", (int)n, p);
        p += n;
        ++*tokens;
        if (buf[0] == '[') {
            ops[mp] = !strcmp(buf, "[MIN") ? 0 : !strcmp(buf, "[MAX") ? 1 : !strcmp(buf, "[MED") ? 2 : 3;
            marks[mp++] = sp;
        } else if (buf[0] == ']') {
            const int op = ops[--mp], base = marks[mp], k = sp - base;
            int *v = stack + base, r;
            for (int i = 1; i < k; i++) /* sorted: min, max and median read from it */
                for (int j = i; j > 0 && v[j - 1] > v[j]; j--) { int t = v[j]; v[j] = v[j - 1]; v[j - 1] = t; }
            if (op == 0) r = v[0];
            else if (op == 1) r = v[k - 1];
            else if (op == 2) r = k % 2 ? v[k / 2] : (int)((v[k / 2 - 1] + v[k / 2]) / 2.0);
            else {
                r = 0;
                for (int i = 0; i < k; i++) r += v[i];
                r %= 10;
            }
            sp = base;
            stack[sp++] = r;
        } else {
            stack[sp++] = buf[0] - '0';
        }
    }
    return sp == 1 && mp == 0 ? stack[0] : -1;
}

TEST(listops_trees_evaluate_and_count_as_the_release) {
    ListopsSpec s = listops_defaults();
    Rng r = rng_make(7, rng_stream(RNG_TEST, 31, 0));
    char *text = malloc(listops_text_cap(&s));
    int seen[10] = {0}, wrong = 0, counted = 0, bounds = 0;
    for (int i = 0; i < 200; i++) {
        size_t length, tokens;
        int label;
        listops_next(&s, &r, text, &length, &label);
        wrong += evaluate(text, &tokens) != label;
        counted += tokens != length;
        bounds += !(tokens > 500 && tokens < 2000);
        seen[label]++;
    }
    CHECK(!wrong && !counted && !bounds, "%d values, %d token counts wrong, %d lengths outside (500, 2000)", wrong,
          counted, bounds);
    int labels = 0;
    for (int k = 0; k < 10; k++) labels += seen[k] > 0;
    CHECK(labels == 10, "only %d of the 10 labels in 200 trees", labels);
    CHECK(evaluate("( ( ( ( ( [MED 4 ) 3 ) 9 ) 6 ) ] )", &(size_t){0}) == 5, "MED of 3 4 6 9: (4 + 6) / 2");
    CHECK(evaluate("( ( ( [MED 4 ) 7 ) ] )", &(size_t){0}) == 5, "MED of 4 7: 5.5 truncated");
    free(text);
}

TEST(listops_files_have_the_release_layout) {
    ListopsSpec s = listops_defaults();
    s.n_train = 6, s.n_valid = 2, s.n_test = 3, s.min_length = 20, s.max_length = 200, s.seed = 4;
    char dir[] = "/tmp/seqlab_listops_XXXXXX";
    REQUIRE(mkdtemp(dir) != NULL, "temp dir");
    Error err = {0};
    REQUIRE(listops_write(&s, dir, &err) == 0, "%s", err.msg);
    const char *names[3] = {"basic_train.tsv", "basic_val.tsv", "basic_test.tsv"};
    const size_t want[3] = {6, 2, 3};
    char lines[11][4096];
    int n_lines = 0;
    for (int f = 0; f < 3; f++) {
        char path[4200], line[4096];
        snprintf(path, sizeof path, "%s/%s", dir, names[f]);
        FILE *in = fopen(path, "r");
        REQUIRE(in != NULL, "%s missing", names[f]);
        size_t rows = 0;
        CHECK(fgets(line, sizeof line, in) && !strcmp(line, "Source\tTarget\n"), "%s: header", names[f]);
        while (fgets(line, sizeof line, in)) {
            char *tab = strchr(line, '\t');
            size_t tokens;
            CHECK(tab && evaluate((*tab = 0, line), &tokens) == atoi(tab + 1), "%s: row %zu's label", names[f], rows);
            CHECK(tokens > 20 && tokens < 200, "%s: row %zu has %zu tokens", names[f], rows, tokens);
            for (int j = 0; j < n_lines; j++) CHECK(strcmp(lines[j], line), "%s: row %zu repeats a tree", names[f], rows);
            if (n_lines < 11) snprintf(lines[n_lines++], sizeof lines[0], "%s", line);
            rows++;
        }
        fclose(in);
        CHECK(rows == want[f], "%s: %zu rows, want %zu", names[f], rows, want[f]);
        unlink(path);
    }
    rmdir(dir);
    s.max_args = 1;
    CHECK(listops_write(&s, dir, &err) != 0 && strstr(err.msg, "max_args"), "max_args 1 accepted");
}
