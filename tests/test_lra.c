/* test_lra.c — the readers of the LRA's released formats (src/tasks/lra.c)
 * on small files written in exactly those formats: ListOps' tokenisation,
 * the aclImdb folder, the AAN pairs, CIFAR-10's binary batches with
 * TensorFlow's grayscale, Pathfinder's metadata and PNG images; and their
 * errors on malformed input, which name the file (and line). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../src/data/corpus.h"
#include "../src/data/png.h"
#include "../src/tasks/lra.h"
#include "../src/tasks/task.h"
#include "taskrig.h"
#include "test.h"

static Config format_config(const char *format, const char *data) {
    Config c;
    config_defaults(&c);
    snprintf(c.task, sizeof c.task, "classification");
    snprintf(c.format, sizeof c.format, "%s", format);
    snprintf(c.data, sizeof c.data, "%s", data);
    return c;
}

static void write_text(const char *dir, const char *name, const char *text) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    test_write_file(path, text, strlen(text));
}

static char *text_of(const Examples *ex, size_t i, char *buf, size_t cap) {
    const size_t a = ex->text_start[i], n = ex->text_start[i + 1] - a;
    snprintf(buf, cap, "%.*s", (int)n, ex->chars + a);
    return buf;
}

/* Text i's words joined by single spaces (what a word tokenizer sees). */
static char *words_of(const Examples *ex, size_t i, char *buf, size_t cap) {
    size_t n = 0;
    for (size_t k = ex->text_start[i]; k < ex->text_start[i + 1] && n + 2 < cap; k++) {
        const char ch = ex->chars[k];
        if (ch != ' ' || (n > 0 && buf[n - 1] != ' ')) buf[n++] = ch;
    }
    while (n > 0 && buf[n - 1] == ' ') n--;
    buf[n] = 0;
    return buf;
}

TEST(lra_listops_tokenised_as_the_lra) {
    const char *dir = test_tmpdir();
    write_text(dir, "basic_val.tsv", "Source\tTarget\n( ( ( [MAX 2 ) 9 ) ] )\t9\n( ( [SM 4 ) ( ( [MIN 3 ) 1 ) ] ) ] )\t5\n");
    Config c = format_config("listops", "");
    snprintf(c.valid_file, sizeof c.valid_file, "%s/basic_val.tsv", dir);
    snprintf(c.text_column, sizeof c.text_column, "Source");
    snprintf(c.label_column, sizeof c.label_column, "Target");
    Examples ex;
    Error err = {0};
    REQUIRE(lra_read(&ex, &c, SPLIT_VALID, false, &err) == 0, "%s", err.msg);
    char buf[128];
    REQUIRE(ex.n == 2, "%zu examples", ex.n);
    /* parentheses dropped, ']' as X: the words the LRA's tokenizer sees */
    CHECK(!strcmp(words_of(&ex, 0, buf, sizeof buf), "[MAX 2 9 X"), "'%s'", buf);
    CHECK(!strcmp(words_of(&ex, 1, buf, sizeof buf), "[SM 4 [MIN 3 1 X X"), "'%s'", buf);
    CHECK(ex.labels[0] == 9 && ex.labels[1] == 5, "labels %d %d", ex.labels[0], ex.labels[1]);
    examples_free(&ex);
    REQUIRE(lra_read(&ex, &c, SPLIT_TEST, false, &err) == 0 && ex.n == 0, "an absent split reads nothing");
}

TEST(lra_imdb_folder) {
    const char *root = test_tmpdir();
    char dir[512];
    const char *parts[] = {"train/pos", "train/neg", "test/pos", "test/neg"};
    for (int k = 0; k < 4; k++) {
        char sub[64];
        snprintf(sub, sizeof sub, "%.5s", parts[k]);
        snprintf(dir, sizeof dir, "%s/%s", root, sub);
        mkdir(dir, 0755);
        snprintf(dir, sizeof dir, "%s/%s", root, parts[k]);
        mkdir(dir, 0755);
    }
    snprintf(dir, sizeof dir, "%s/train/pos", root);
    write_text(dir, "1_10.txt", "A fine film.<br />Loved it.");
    write_text(dir, "0_9.txt", "Great!");
    snprintf(dir, sizeof dir, "%s/train/neg", root);
    write_text(dir, "0_2.txt", "Dull.");
    snprintf(dir, sizeof dir, "%s/test/pos", root);
    write_text(dir, "0_8.txt", "Good.");
    snprintf(dir, sizeof dir, "%s/test/neg", root);
    write_text(dir, "0_1.txt", "Bad.");
    Config c = format_config("imdb", root);
    Examples ex;
    Error err = {0};
    REQUIRE(lra_read(&ex, &c, SPLIT_TRAIN, true, &err) == 0, "%s", err.msg);
    char buf[128];
    REQUIRE(ex.n == 3, "%zu training reviews", ex.n);
    /* neg first, then pos, each in file-name order */
    CHECK(ex.labels[0] == 0 && !strcmp(text_of(&ex, 0, buf, sizeof buf), "Dull."), "0: %d '%s'", ex.labels[0], buf);
    CHECK(ex.labels[1] == 1 && !strcmp(text_of(&ex, 1, buf, sizeof buf), "Great!"), "1: %d '%s'", ex.labels[1], buf);
    CHECK(ex.labels[2] == 1 && !strcmp(text_of(&ex, 2, buf, sizeof buf), "A fine film.<br />Loved it."), "2: '%s'", buf);
    examples_free(&ex);
    REQUIRE(lra_read(&ex, &c, SPLIT_VALID, false, &err) == 0 && ex.n == 2, "valid reads the test reviews");
    CHECK(!strcmp(text_of(&ex, 1, buf, sizeof buf), "Good."), "'%s'", buf);
    examples_free(&ex);
    snprintf(dir, sizeof dir, "%s/test/neg/0_1.txt", root);
    remove(dir);
    snprintf(dir, sizeof dir, "%s/test/neg", root);
    CHECK(lra_read(&ex, &c, SPLIT_TEST, false, &err) != 0 && strstr(err.msg, dir) && strstr(err.msg, "no .txt"),
          "an empty class folder: '%s'", err.msg);
    c = format_config("imdb", "");
    CHECK(lra_read(&ex, &c, SPLIT_TRAIN, true, &err) != 0 && strstr(err.msg, "key 'data'"), "no folder: '%s'", err.msg);
}

TEST(lra_aan_pairs_and_their_errors) {
    const char *dir = test_tmpdir();
    write_text(dir, "pairs.tsv", "1\tA01\tB02\tfirst paper\tsecond paper\n0.0\tA03\tB04\tthird\tfourth\n");
    write_text(dir, "half.tsv", "0.5\tA01\tB02\tx\ty\n");
    write_text(dir, "short.tsv", "1\tA01\tB02\tonly one text\n");
    Config c = format_config("aan", "");
    snprintf(c.train_file, sizeof c.train_file, "%s/pairs.tsv", dir);
    Examples ex;
    Error err = {0};
    REQUIRE(lra_read(&ex, &c, SPLIT_TRAIN, true, &err) == 0, "%s", err.msg);
    char buf[64];
    REQUIRE(ex.n == 2 && ex.texts == 2 && !ex.values, "%zu pairs of %d texts", ex.n, ex.texts);
    CHECK(ex.labels[0] == 1 && ex.labels[1] == 0, "labels %d %d", ex.labels[0], ex.labels[1]);
    CHECK(!strcmp(text_of(&ex, 0, buf, sizeof buf), "first paper") && !strcmp(text_of(&ex, 3, buf, sizeof buf), "fourth"),
          "texts: '%s'", buf);
    examples_free(&ex);
    snprintf(c.train_file, sizeof c.train_file, "%s/half.tsv", dir);
    CHECK(lra_read(&ex, &c, SPLIT_TRAIN, true, &err) != 0 && strstr(err.msg, "half.tsv") && strstr(err.msg, "not 0 or 1"),
          "label 0.5: '%s'", err.msg);
    snprintf(c.train_file, sizeof c.train_file, "%s/short.tsv", dir);
    CHECK(lra_read(&ex, &c, SPLIT_TRAIN, true, &err) != 0 && strstr(err.msg, "short.tsv:1"), "4 columns: '%s'", err.msg);
}

enum { RECORD = 3073, PER_FILE = 10000 };

/* A CIFAR-10 binary batch: record i has label i % 10 and pixel p of channel
 * ch equal to (i + p + 85 ch) % 256; `bytes` cuts it short. */
static void write_cifar(const char *dir, const char *name, size_t bytes, int bad_label_at) {
    unsigned char *data = malloc((size_t)PER_FILE * RECORD);
    for (size_t i = 0; i < PER_FILE; i++) {
        unsigned char *r = data + i * RECORD;
        r[0] = (unsigned char)((int)i == bad_label_at ? 10 : i % 10);
        for (size_t ch = 0; ch < 3; ch++)
            for (size_t p = 0; p < 1024; p++) r[1 + ch * 1024 + p] = (unsigned char)((i + p + 85 * ch) % 256);
    }
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    test_write_file(path, (const char *)data, bytes);
    free(data);
}

TEST(lra_cifar10_binary_batches_in_tensorflow_gray) {
    const char *dir = test_tmpdir();
    write_cifar(dir, "data_batch_5.bin", (size_t)PER_FILE * RECORD, -1);
    write_cifar(dir, "test_batch.bin", (size_t)PER_FILE * RECORD, -1);
    Config c = format_config("cifar10", dir);
    Examples ex;
    Error err = {0};
    REQUIRE(lra_read(&ex, &c, SPLIT_VALID, false, &err) == 0, "%s", err.msg);
    /* valid: the last 5,000 of the training batches, i.e. records 5,000.. of data_batch_5 */
    REQUIRE(ex.n == 5000 && ex.reals && ex.id_start[ex.n] == 5000u * 1024, "%zu images", ex.n);
    const size_t i = 5003, p = 77;
    const unsigned r = (i + p) % 256, g = (i + p + 85) % 256, b = (i + p + 170) % 256;
    /* TensorFlow: channels scaled to [0, 1], weighted, back to uint8 by x * 255.5 truncated */
    const float f = 0.2989f * (float)r / 255.0f + 0.5870f * (float)g / 255.0f + 0.1140f * (float)b / 255.0f;
    const float want = (float)(int)(f * 255.5f);
    CHECK(ex.labels[3] == 3 && ex.reals[3 * 1024 + p] == want, "label %d, pixel %g, want %g", ex.labels[3],
          (double)ex.reals[3 * 1024 + p], (double)want);
    examples_free(&ex);
    REQUIRE(lra_read(&ex, &c, SPLIT_TEST, false, &err) == 0 && ex.n == PER_FILE, "test: %s", err.msg);
    examples_free(&ex);
    CHECK(lra_read(&ex, &c, SPLIT_TRAIN, true, &err) != 0 && strstr(err.msg, "data_batch_1.bin"), "missing: '%s'",
          err.msg);
    write_cifar(dir, "test_batch.bin", (size_t)PER_FILE * RECORD - 100, -1);
    CHECK(lra_read(&ex, &c, SPLIT_TEST, false, &err) != 0 && strstr(err.msg, "test_batch.bin") && strstr(err.msg, "truncated"),
          "truncated: '%s'", err.msg);
    write_cifar(dir, "test_batch.bin", (size_t)PER_FILE * RECORD, 42);
    CHECK(lra_read(&ex, &c, SPLIT_TEST, false, &err) != 0 && strstr(err.msg, "record 43") && strstr(err.msg, "label 10"),
          "a bad label: '%s'", err.msg);
}

/* A Pathfinder folder of 20 images of 8 x 8: image i has every pixel 10 i
 * but the last, 10 i + 1, and label i % 2. */
static void write_pathfinder(const char *root) {
    char path[512], lines[2048] = "";
    snprintf(path, sizeof path, "%s/metadata", root);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/imgs", root);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/imgs/0", root);
    mkdir(path, 0755);
    uint8_t px[8 * 8];
    for (int i = 0; i < 20; i++) {
        memset(px, 10 * i, sizeof px);
        px[63] = (uint8_t)(10 * i + 1);
        snprintf(path, sizeof path, "%s/imgs/0/sample_%d.png", root, i);
        Error err = {0};
        CHECK(png_write_gray(path, px, 8, 8, &err) == 0, "%s", err.msg);
        snprintf(lines + strlen(lines), sizeof lines - strlen(lines), "imgs/0 sample_%d.png %d %d\n", i, i, i % 2);
    }
    snprintf(path, sizeof path, "%s/metadata", root);
    write_text(path, "0.npy", lines);
}

TEST(lra_pathfinder_metadata_and_images) {
    const char *root = test_tmpdir();
    char path[512];
    write_pathfinder(root);
    Config c = format_config("pathfinder", root);
    c.image_size = 8;
    int seen[20] = {0};
    size_t counts[3];
    for (int s = 0; s < 3; s++) {
        Examples ex;
        Error err = {0};
        REQUIRE(lra_read(&ex, &c, s, s == SPLIT_TRAIN, &err) == 0, "split %d: %s", s, err.msg);
        counts[s] = ex.n;
        for (size_t e = 0; e < ex.n; e++) {
            const int i = (int)ex.reals[e * 64] / 10;
            CHECK(i >= 0 && i < 20 && ex.labels[e] == i % 2 && ex.reals[e * 64 + 63] == 10.0f * (float)i + 1.0f,
                  "split %d example %zu: image %d label %d", s, e, i, ex.labels[e]);
            if (i >= 0 && i < 20) seen[i]++;
        }
        examples_free(&ex);
    }
    CHECK(counts[0] == 16 && counts[1] == 2 && counts[2] == 2, "splits %zu %zu %zu", counts[0], counts[1], counts[2]);
    for (int i = 0; i < 20; i++) CHECK(seen[i] == 1, "image %d read %d times", i, seen[i]);
    Examples ex;
    Error err = {0};
    snprintf(path, sizeof path, "%s/metadata", root);
    write_text(path, "1.npy", "imgs/0 sample_0.png 0\n");
    CHECK(lra_read(&ex, &c, SPLIT_TRAIN, true, &err) != 0 && strstr(err.msg, "1.npy:1") && strstr(err.msg, "3 fields"),
          "a short line: '%s'", err.msg);
    write_text(path, "1.npy", "imgs/0 sample_99.png 99 1\n");
    int failed = 0;
    for (int s = 0; s < 3; s++) {
        if (lra_read(&ex, &c, s, false, &err) == 0) examples_free(&ex);
        else failed += strstr(err.msg, "sample_99.png") != NULL;
    }
    CHECK(failed == 1, "a missing image fails the one split that holds it (%d): '%s'", failed, err.msg);
}

/* Images through the task: as token ids (the pixel values, tokenizer byte)
 * and as encoder linear's inputs in frames of d_input pixels, normalised. */
TEST(lra_signals_as_ids_and_as_framed_inputs) {
    const char *root = test_tmpdir();
    write_pathfinder(root);
    for (int linear = 0; linear < 2; linear++) {
        Config c = format_config("pathfinder", root);
        c.image_size = 8;
        c.tgt_len = 64;
        c.batch_size = 4;
        c.causal = false;
        snprintf(c.tokenizer, sizeof c.tokenizer, "auto");
        if (linear) {
            snprintf(c.encoder, sizeof c.encoder, "linear");
            c.d_input = 3; /* 64 pixels: 21 frames of 3 and one of 1, zero-filled */
            c.input_mean = 0.5;
            c.input_std = 0.25;
        }
        REQUIRE(config_set(&c, "objective.pooling", "mean", "test", &(Error){0}) == 0, "pooling");
        Tokenizer tok;
        Task t;
        Batch b;
        Error err = {0};
        REQUIRE(taskrig_open(&c, &tok, &t, &err) == 0 && task_next(&t, &b, 0, &err) == 0, "%s", err.msg);
        const size_t L = linear ? 22 : 64;
        CHECK(b.B == 4 && b.T >= L, "batch %zu x %zu", b.B, b.T);
        for (size_t r = 0; r < b.B; r++) {
            const int label = b.labels[r];
            if (!linear) {
                const int i = b.ids[r * b.T] / 10;
                CHECK(i % 2 == label && b.ids[r * b.T + 63] == 10 * i + 1, "row %zu: ids %d .. %d", r, b.ids[r * b.T],
                      b.ids[r * b.T + 63]);
                continue;
            }
            const float *x = b.inputs + r * b.T * 3;
            const float v0 = x[0] * 0.25f + 0.5f; /* back to [0, 1] */
            const int i = (int)(v0 * 255.0f + 0.5f) / 10;
            const float last = ((10.0f * (float)i + 1.0f) / 255.0f - 0.5f) / 0.25f;
            CHECK(i % 2 == label && fabsf(x[21 * 3] - last) < 1e-6f && x[21 * 3 + 1] == 0.0f && x[21 * 3 + 2] == 0.0f,
                  "row %zu: the last frame %g %g %g, want %g 0 0", r, (double)x[63], (double)x[64], (double)x[65],
                  (double)last);
            CHECK(b.mask[r * b.T + 21] == 1.0f && (b.T == 22 || b.mask[r * b.T + 22] == 0.0f), "row %zu: mask", r);
        }
        task_free(&t);
        tokenizer_free(&tok);
    }
}
