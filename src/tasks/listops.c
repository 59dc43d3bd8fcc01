/* listops.c — see listops.h. */
#include "listops.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/file.h"

static const char *const op_names[LISTOPS_OPS] = {"[MIN", "[MAX", "[MED", "[SM"};
enum { OP_MIN, OP_MAX, OP_MED, OP_SM };

/* The tree being drawn: nodes in the order made, an operator's children as a
 * run of child_list. */
typedef struct {
    int8_t op;          /* -1: a digit */
    int8_t value;       /* the node's value, 0..9 */
    int16_t n;          /* children */
    uint32_t children;  /* first index into child_list */
} Node;

typedef struct {
    Node *nodes;          /* room for max_length + 64: every node adds a token */
    uint32_t *child_list;
    size_t n_nodes, n_children, length;
    bool too_long;        /* length reached max_length: the tree is rejected, drawing stops early */
} Tree;

ListopsSpec listops_defaults(void) {
    return (ListopsSpec){.max_depth = 10, .max_args = 10, .min_length = 500, .max_length = 2000,
                         .n_train = 96000, .n_valid = 2000, .n_test = 2000, .seed = 0};
}

static int value_of(int op, const int *v, int n) {
    int out = v[0];
    if (op == OP_MIN) for (int i = 1; i < n; i++) out = v[i] < out ? v[i] : out;
    else if (op == OP_MAX) for (int i = 1; i < n; i++) out = v[i] > out ? v[i] : out;
    else if (op == OP_SM) {
        out = 0;
        for (int i = 0; i < n; i++) out = (out + v[i]) % 10;
    } else { /* the median, truncated: sort the (at most max_args) values */
        int s[64];
        memcpy(s, v, (size_t)n * sizeof *s);
        for (int i = 1; i < n; i++)
            for (int j = i; j > 0 && s[j - 1] > s[j]; j--) {
                const int t = s[j];
                s[j] = s[j - 1], s[j - 1] = t;
            }
        out = n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2; /* both >= 0: / truncates */
    }
    return out;
}

/* generate_tree(depth): the node's index, or stops early once too long. */
static uint32_t grow(const ListopsSpec *s, Rng *r, Tree *t, int depth) {
    const uint32_t me = (uint32_t)t->n_nodes++;
    const float u = depth < s->max_depth ? rng_uniform(r) : 1.0f;
    if (u > 0.25f || t->too_long) { /* a leaf */
        t->nodes[me] = (Node){.op = -1, .value = (int8_t)(rng_next(r) % 10)};
        if (++t->length >= s->max_length) t->too_long = true;
        return me;
    }
    const int n = 2 + (int)(rng_next(r) % (uint32_t)(s->max_args - 1));
    uint32_t kids[64];
    int values[64];
    t->length += 2; /* the operator and its ']' */
    for (int i = 0; i < n && !t->too_long; i++) kids[i] = grow(s, r, t, depth + 1);
    if (t->too_long) return me;
    const int op = (int)(rng_next(r) % LISTOPS_OPS);
    for (int i = 0; i < n; i++) values[i] = t->nodes[kids[i]].value;
    t->nodes[me] = (Node){.op = (int8_t)op, .value = (int8_t)value_of(op, values, n), .n = (int16_t)n,
                          .children = (uint32_t)t->n_children};
    memcpy(t->child_list + t->n_children, kids, (size_t)n * sizeof *kids);
    t->n_children += (size_t)n;
    if (t->length >= s->max_length) t->too_long = true;
    return me;
}

/* The release's text of node i: an operator with n children is n + 1 "( ",
 * its name, " child )" for each child, then " ] )". */
static char *write_node(const Tree *t, uint32_t i, char *out) {
    const Node *nd = &t->nodes[i];
    if (nd->op < 0) {
        *out++ = (char)('0' + nd->value);
        return out;
    }
    for (int k = 0; k <= nd->n; k++) *out++ = '(', *out++ = ' ';
    out += sprintf(out, "%s", op_names[nd->op]);
    for (int k = 0; k < nd->n; k++) {
        *out++ = ' ';
        out = write_node(t, t->child_list[nd->children + (uint32_t)k], out);
        *out++ = ' ', *out++ = ')';
    }
    memcpy(out, " ] )", 4);
    return out + 4;
}

/* Bytes of an accepted tree's text: per token at most its name (4) and a
 * space, and per operator at most max_args + 1 "( " and " )" pairs. */
size_t listops_text_cap(const ListopsSpec *s) {
    return s->max_length * (5 + 4 * (size_t)(s->max_args + 1)) + 16;
}

void listops_next(const ListopsSpec *s, Rng *r, char *text, size_t *length, int *label) {
    Tree t = {0};
    t.nodes = malloc((s->max_length + 64) * sizeof *t.nodes);
    t.child_list = malloc((s->max_length + 64) * sizeof *t.child_list);
    for (;;) {
        t.n_nodes = t.n_children = t.length = 0;
        t.too_long = false;
        const uint32_t root = grow(s, r, &t, 1);
        if (t.too_long || t.length <= s->min_length) continue;
        *write_node(&t, root, text) = 0;
        *length = t.length;
        *label = t.nodes[root].value;
        break;
    }
    free(t.nodes);
    free(t.child_list);
}

/* 64-bit FNV-1a of a tree's text: the set of trees kept holds these (two
 * distinct trees of 500+ tokens colliding is not a concern at 10^5 trees). */
static uint64_t text_hash(const char *text) {
    uint64_t h = 1469598103934665603ull;
    for (; *text; text++) h = (h ^ (unsigned char)*text) * 1099511628211ull;
    return h;
}

/* Inserts h into the open-addressed set (cap a power of two); false if present. */
static bool set_add(uint64_t *set, size_t cap, uint64_t h) {
    h |= 1; /* 0 marks an empty slot */
    for (size_t i = h & (cap - 1);; i = (i + 1) & (cap - 1)) {
        if (set[i] == h) return false;
        if (!set[i]) return set[i] = h, true;
    }
}

int listops_write(const ListopsSpec *s, const char *dir, Error *err) {
    if (s->max_args < 2 || s->max_args > 64 || s->max_depth < 1 || s->min_length + 1 >= s->max_length)
        return err_set(err, "listops: max_args must be in [2, 64], max_depth >= 1 and min_length < max_length - 1");
    if (file_make_dirs(dir, err)) return -1;
    const size_t total = s->n_train + s->n_valid + s->n_test, counts[3] = {s->n_train, s->n_valid, s->n_test};
    static const char *const names[3] = {"basic_train.tsv", "basic_val.tsv", "basic_test.tsv"};
    size_t cap = 1;
    while (cap < 2 * total + 2) cap *= 2;
    uint64_t *set = calloc(cap, sizeof *set);
    char *text = malloc(listops_text_cap(s));
    if (!set || !text) {
        free(set), free(text);
        return err_set(err, "out of memory for %zu ListOps trees", total);
    }
    Rng r = rng_make(s->seed, rng_stream(RNG_DATA, 0x4c4f, 0));
    int rc = 0;
    for (int f = 0; f < 3 && !rc; f++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, names[f]);
        FILE *out = fopen(path, "w");
        if (!out) {
            rc = err_errno(err, "cannot write '%s'", path);
            break;
        }
        fprintf(out, "Source\tTarget\n");
        for (size_t k = 0; k < counts[f];) {
            size_t length;
            int label;
            listops_next(s, &r, text, &length, &label);
            if (!set_add(set, cap, text_hash(text))) continue;
            fprintf(out, "%s\t%d\n", text, label);
            k++;
        }
        if (fclose(out) != 0) rc = err_errno(err, "cannot write '%s'", path);
    }
    free(set);
    free(text);
    return rc;
}
