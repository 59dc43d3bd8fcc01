/* test_speech.c — the WAV reader (src/data/wav.c) and the Speech Commands
 * reader (src/tasks/speech_commands.c) on small folders in the release's
 * layout, written here with libsndfile: every split read back with its
 * sample values (s / 32768), zero padding and cutting to the length, class
 * ids in the order of the class list (SC10, "sc35", a given list), files in
 * sorted order; then bad input, each refused with a message naming the file
 * (and the list line): truncated WAVs, a text file named .wav, another rate,
 * stereo, no samples, missing folders and lists, a list naming a missing clip.
 *
 * Adding a case: build a folder with make_tree() (or write_wav() and
 * write_text()), read it, compare with the clip ids of the table `clips`. */
#include <sndfile.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../src/data/wav.h"
#include "../src/tasks/speech_commands.h"
#include "test.h"

/* ------------------------------------------------------------------------ */
/* Fixtures */

/* Sample i of clip `id`: distinct per clip and place, odd (so never the
 * padding's 0), in [-30000, 30000]. */
static short sample_of(int id, size_t i) {
    return (short)(((id * 7919 + (int)(i % 100000) * 131) % 60001 - 30000) | 1);
}

/* Writes a 16-bit PCM WAV of n frames of clip id at rate Hz (every channel
 * the same); false on failure (reported). */
static bool write_wav(const char *path, int id, size_t n, int rate, int channels) {
    SF_INFO info = {.samplerate = rate, .channels = channels, .format = SF_FORMAT_WAV | SF_FORMAT_PCM_16};
    SNDFILE *f = sf_open(path, SFM_WRITE, &info);
    if (!f) {
        test_fail(__FILE__, __LINE__, "cannot write '%s': %s", path, sf_strerror(NULL));
        return false;
    }
    short *x = malloc((n ? n : 1) * (size_t)channels * sizeof *x);
    for (size_t i = 0; i < n; i++)
        for (int c = 0; c < channels; c++) x[i * (size_t)channels + (size_t)c] = sample_of(id, i);
    const sf_count_t put = sf_writef_short(f, x, (sf_count_t)n);
    free(x);
    sf_close(f);
    if (put != (sf_count_t)n)
        test_fail(__FILE__, __LINE__, "wrote %lld of %zu frames to '%s'", (long long)put, n, path);
    return put == (sf_count_t)n;
}

static void write_text(const char *path, const char *text) {
    test_write_file(path, text, strlen(text));
}

static void make_dir(const char *root, const char *name) {
    char path[2048];
    snprintf(path, sizeof path, "%s/%s", root, name);
    mkdir(path, 0700);
}

/* root/rel into a static buffer (one at a time). */
static const char *at(const char *root, const char *rel) {
    static char path[2048];
    snprintf(path, sizeof path, "%s/%s", root, rel);
    return path;
}

/* The clips of make_tree: file, clip id, frames, split. */
typedef struct {
    const char *rel;
    int id;
    size_t n;
    int split;
} Clip;

static const Clip clips[] = {
    {"yes/a.wav", 1, 16000, SPLIT_TRAIN}, {"yes/b.wav", 2, 100, SPLIT_VALID},  {"yes/c.wav", 3, 16000, SPLIT_TEST},
    {"no/a.wav", 4, 20000, SPLIT_VALID},  {"no/b.wav", 5, 16000, SPLIT_TRAIN}, {"up/a.wav", 6, 16000, SPLIT_TRAIN},
    {"up/b.wav", 7, 50, SPLIT_TEST},
};
enum { N_CLIPS = sizeof clips / sizeof clips[0] };

/* A Speech Commands folder at root: words yes, no, up (the clips above), a
 * _background_noise_ folder, a stray text file in no/ and at the root, and
 * the lists (the validation list also names a clip of a word that is not
 * there, and has a CRLF line and a blank line). */
static bool make_tree(const char *root) {
    mkdir(root, 0700);
    const char *words[] = {"yes", "no", "up", "_background_noise_"};
    for (int w = 0; w < 4; w++) make_dir(root, words[w]);
    for (int c = 0; c < N_CLIPS; c++)
        if (!write_wav(at(root, clips[c].rel), clips[c].id, clips[c].n, 16000, 1)) return false;
    if (!write_wav(at(root, "_background_noise_/white_noise.wav"), 99, 32000, 16000, 1)) return false;
    write_text(at(root, "no/notes.txt"), "not a clip\n");
    write_text(at(root, "README.md"), "a test folder\n");
    write_text(at(root, "validation_list.txt"), "yes/b.wav\nno/a.wav\r\n\nleft/0a1b_nohash_0.wav\n");
    write_text(at(root, "testing_list.txt"), "yes/c.wav\nup/b.wav\n");
    return true;
}

/* A fresh folder name inside this test's temporary directory. */
static void tree_path(char *out, size_t cap) {
    snprintf(out, cap, "%s/sc", test_tmpdir());
}

/* Checks example e of ex against clip c of `clips` with class `label`:
 * the clip's samples / 32768, then zeros, `length` in all. */
static void check_example(const Examples *ex, size_t e, const Clip *c, int label, size_t length) {
    CHECK(ex->labels[e] == label, "%s: example %zu has class %d, expected %d", c->rel, e, ex->labels[e], label);
    CHECK(ex->id_start[e + 1] - ex->id_start[e] == length, "%s: %zu samples, expected %zu", c->rel,
          ex->id_start[e + 1] - ex->id_start[e], length);
    const float *x = ex->reals + ex->id_start[e];
    size_t bad = 0, first = 0;
    for (size_t i = 0; i < length; i++) {
        const float want = i < c->n ? (float)sample_of(c->id, i) / 32768.0f : 0.0f;
        if (x[i] != want && !bad++) first = i;
    }
    CHECK(!bad, "%s: %zu of %zu samples differ, first at %zu: %g, expected %g", c->rel, bad, length, first,
          (double)x[first], (double)(first < c->n ? (float)sample_of(c->id, first) / 32768.0f : 0.0f));
}

/* Reads every split of root with `classes` (the names in class order) and
 * checks each against the clips table: membership, order, values. */
static void check_splits(const char *root, const char *classes, const char *const *order, int n_order, size_t length) {
    for (int s = 0; s < SPLIT_COUNT; s++) {
        Examples ex;
        Error err = {{0}};
        int rc = speech_commands_read(&ex, root, s, classes, length, &err);
        CHECK(rc == 0, "split %d: %s", s, err.msg);
        if (rc) continue;
        size_t e = 0;
        for (int k = 0; k < n_order; k++)
            for (int c = 0; c < N_CLIPS; c++) /* the table lists each word's files sorted */
                if (clips[c].split == s && !strncmp(clips[c].rel, order[k], strlen(order[k])) &&
                    clips[c].rel[strlen(order[k])] == '/') {
                    if (e < ex.n) check_example(&ex, e, &clips[c], k, length);
                    e++;
                }
        CHECK(ex.n == e, "split %d: %zu examples, expected %zu", s, ex.n, e);
        CHECK(ex.labelled && ex.reals, "split %d: a labelled signal set", s);
        examples_free(&ex);
    }
}

/* Expects the read to fail with a message holding every one of want[]
 * (NULL-terminated) and to leave ex empty. */
static void expect_read_error(const char *root, int split, const char *classes, const char *const *want) {
    Examples ex;
    Error err = {{0}};
    int rc = speech_commands_read(&ex, root, split, classes, 16000, &err);
    CHECK(rc == -1, "read of '%s' (classes '%s') succeeded", root, classes);
    for (int i = 0; want[i]; i++) CHECK(strstr(err.msg, want[i]), "message lacks '%s': %s", want[i], err.msg);
    CHECK(ex.n == 0 && !ex.reals && !ex.labels, "a failed read leaves its examples freed");
}

/* ------------------------------------------------------------------------ */
/* The WAV reader */

TEST(speech_wav_values) {
    char path[1024];
    snprintf(path, sizeof path, "%s/x.wav", test_tmpdir());
    REQUIRE(write_wav(path, 11, 1234, 16000, 1), "fixture");
    float *x;
    size_t n;
    Error err = {{0}};
    REQUIRE(wav_read(path, 16000, &x, &n, &err) == 0, "%s", err.msg);
    CHECK(n == 1234, "%zu samples, expected 1234", n);
    size_t bad = 0;
    for (size_t i = 0; i < n && i < 1234; i++) bad += x[i] != (float)sample_of(11, i) / 32768.0f;
    CHECK(!bad, "%zu samples differ from s / 32768", bad);
    free(x);

    /* the extremes: -32768 -> -1 exactly, 32767 -> just below 1 */
    SF_INFO info = {.samplerate = 16000, .channels = 1, .format = SF_FORMAT_WAV | SF_FORMAT_PCM_16};
    SNDFILE *f = sf_open(path, SFM_WRITE, &info);
    REQUIRE(f, "cannot write '%s'", path);
    const short ends[3] = {-32768, 32767, 0};
    sf_writef_short(f, ends, 3);
    sf_close(f);
    REQUIRE(wav_read(path, 16000, &x, &n, &err) == 0, "%s", err.msg);
    CHECK(n == 3 && x[0] == -1.0f && x[1] == 32767.0f / 32768.0f && x[1] < 1.0f && x[2] == 0.0f,
          "extremes read as %g %g %g", (double)x[0], (double)x[1], (double)x[2]);
    free(x);
}

/* wav_read of path must fail with a message naming it and holding `want`. */
static void expect_wav_error(const char *path, unsigned rate, const char *want) {
    float *x = (float *)&x;
    size_t n = 7;
    Error err = {{0}};
    CHECK(wav_read(path, rate, &x, &n, &err) == -1, "'%s' read without error", path);
    CHECK(strstr(err.msg, path), "the message does not name '%s': %s", path, err.msg);
    CHECK(strstr(err.msg, want), "the message lacks '%s': %s", want, err.msg);
    CHECK(x == NULL && n == 0, "a failed read returns no samples");
}

TEST(speech_wav_errors) {
    char dir[1024], path[1100];
    snprintf(dir, sizeof dir, "%s", test_tmpdir());

    snprintf(path, sizeof path, "%s/missing.wav", dir);
    expect_wav_error(path, 16000, "No such file");

    snprintf(path, sizeof path, "%s/cut.wav", dir); /* cut inside the samples */
    REQUIRE(write_wav(path, 1, 16000, 16000, 1), "fixture");
    REQUIRE(truncate(path, 10000) == 0, "truncate");
    expect_wav_error(path, 16000, "truncated");

    snprintf(path, sizeof path, "%s/cut_header.wav", dir); /* cut inside the header */
    REQUIRE(write_wav(path, 1, 16000, 16000, 1), "fixture");
    REQUIRE(truncate(path, 30) == 0, "truncate");
    expect_wav_error(path, 16000, "truncated");

    snprintf(path, sizeof path, "%s/odd.wav", dir); /* cut inside the last sample */
    REQUIRE(write_wav(path, 1, 100, 16000, 1), "fixture");
    REQUIRE(truncate(path, 44 + 199) == 0, "truncate");
    expect_wav_error(path, 16000, "truncated");

    snprintf(path, sizeof path, "%s/text.wav", dir);
    write_text(path, "this is a text file, not audio; it just has the name of one\n");
    expect_wav_error(path, 16000, "not a WAV file");

    snprintf(path, sizeof path, "%s/short_text.wav", dir);
    write_text(path, "hi\n");
    expect_wav_error(path, 16000, "not a WAV file");

    snprintf(path, sizeof path, "%s/zero.wav", dir);
    write_text(path, "");
    expect_wav_error(path, 16000, "empty");

    snprintf(path, sizeof path, "%s/rate.wav", dir);
    REQUIRE(write_wav(path, 1, 8000, 8000, 1), "fixture");
    expect_wav_error(path, 16000, "8000 Hz");

    snprintf(path, sizeof path, "%s/stereo.wav", dir);
    REQUIRE(write_wav(path, 1, 16000, 16000, 2), "fixture");
    expect_wav_error(path, 16000, "2 channels");

    snprintf(path, sizeof path, "%s/silent.wav", dir); /* a header and no samples */
    REQUIRE(write_wav(path, 1, 0, 16000, 1), "fixture");
    expect_wav_error(path, 16000, "no samples");

    snprintf(path, sizeof path, "%s/flac.wav", dir); /* audio, but not a WAV */
    SF_INFO info = {.samplerate = 16000, .channels = 1, .format = SF_FORMAT_FLAC | SF_FORMAT_PCM_16};
    SNDFILE *f = sf_open(path, SFM_WRITE, &info);
    if (f) {
        const short s[4] = {1, 2, 3, 4};
        sf_writef_short(f, s, 4);
        sf_close(f);
        expect_wav_error(path, 16000, "not a WAV file");
    }

    expect_wav_error(dir, 16000, "not a regular file");
}

/* ------------------------------------------------------------------------ */
/* The Speech Commands reader */

TEST(speech_splits_values_and_order) {
    char root[1024];
    tree_path(root, sizeof root);
    REQUIRE(make_tree(root), "fixture");
    const char *const order[] = {"yes", "no", "up"};
    check_splits(root, "yes,no,up", order, 3, 16000);
    /* the class ids follow the list, and words not listed are not read */
    const char *const order2[] = {"up", "yes"};
    check_splits(root, "up,yes", order2, 2, 16000);
}

TEST(speech_pad_and_cut) {
    char root[1024];
    tree_path(root, sizeof root);
    REQUIRE(make_tree(root), "fixture");
    const char *const order[] = {"yes", "no", "up"};
    check_splits(root, "yes,no,up", order, 3, 10);    /* every clip cut */
    check_splits(root, "yes,no,up", order, 3, 200);   /* yes/b (100) and up/b (50) padded */
    check_splits(root, "yes,no,up", order, 3, 25000); /* no/a (20000) padded too */
}

TEST(speech_sc35_sorted_folders) {
    char root[1024], list[256];
    tree_path(root, sizeof root);
    REQUIRE(make_tree(root), "fixture");
    int count = 0;
    Error err = {{0}};
    REQUIRE(speech_commands_classes(root, "sc35", list, sizeof list, &count, &err) == 0, "%s", err.msg);
    CHECK(count == 3 && !strcmp(list, "no,up,yes"), "sc35 classes: %d, '%s' (expected no,up,yes)", count, list);
    const char *const order[] = {"no", "up", "yes"};
    check_splits(root, "sc35", order, 3, 16000);
    CHECK(speech_commands_classes(root, "", list, sizeof list, &count, &err) == -1 && strstr(err.msg, "/down'"),
          "SC10 on a folder without down/: %s", err.msg);
    CHECK(speech_commands_classes(root, "sc35", list, 8, &count, &err) == -1 && strstr(err.msg, "do not fit"),
          "a too small buffer: %s", err.msg);
}

TEST(speech_sc10_default_and_sorted_files) {
    char root[1024];
    tree_path(root, sizeof root);
    mkdir(root, 0700);
    static const char *const words[] = {"yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"};
    for (int w = 9; w >= 0; w--) { /* made in reverse, read in SC10's order */
        make_dir(root, words[w]);
        char rel[64];
        snprintf(rel, sizeof rel, "%s/x.wav", words[w]);
        REQUIRE(write_wav(at(root, rel), 100 + w, 16000, 16000, 1), "fixture");
    }
    /* files of one class in strcmp order, whatever the order of making */
    REQUIRE(write_wav(at(root, "go/b.wav"), 200, 300, 16000, 1), "fixture");
    REQUIRE(write_wav(at(root, "go/C.wav"), 201, 300, 16000, 1), "fixture");
    REQUIRE(write_wav(at(root, "go/a.wav"), 202, 300, 16000, 1), "fixture");
    write_text(at(root, "validation_list.txt"), "");
    write_text(at(root, "testing_list.txt"), "go/x.wav\n");
    Examples ex;
    Error err = {{0}};
    REQUIRE(speech_commands_read(&ex, root, SPLIT_TRAIN, "", 16000, &err) == 0, "%s", err.msg);
    CHECK(ex.n == 12, "%zu training clips, expected 12", ex.n);
    for (int w = 0; w < 9 && (size_t)w < ex.n; w++) {
        Clip c = {words[w], 100 + w, 16000, SPLIT_TRAIN};
        check_example(&ex, (size_t)w, &c, w, 16000);
    }
    const Clip go[3] = {{"go/C.wav", 201, 300, 0}, {"go/a.wav", 202, 300, 0}, {"go/b.wav", 200, 300, 0}};
    for (int i = 0; i < 3 && ex.n == 12; i++) check_example(&ex, (size_t)(9 + i), &go[i], 9, 16000);
    examples_free(&ex);

    REQUIRE(speech_commands_read(&ex, root, SPLIT_TEST, "", 16000, &err) == 0, "%s", err.msg);
    CHECK(ex.n == 1 && ex.labels[0] == 9, "test split: %zu clips, class %d (expected go/x.wav, 9)", ex.n,
          ex.n ? ex.labels[0] : -1);
    examples_free(&ex);
    const char *const none[] = {"none of the clips", "validation", NULL};
    expect_read_error(root, SPLIT_VALID, "", none);
}

TEST(speech_folder_errors) {
    char root[1024];
    tree_path(root, sizeof root);
    const char *const missing_root[] = {root, "does not exist", NULL};
    expect_read_error(root, SPLIT_TRAIN, "yes", missing_root);
    REQUIRE(make_tree(root), "fixture");

    const char *const missing_class[] = {"/left'", "does not exist", NULL};
    expect_read_error(root, SPLIT_TRAIN, "yes,left", missing_class);
    const char *const sc10_missing[] = {"/down'", "SC10", NULL};
    expect_read_error(root, SPLIT_TRAIN, "", sc10_missing);
    const char *const empty_name[] = {"empty name", NULL};
    expect_read_error(root, SPLIT_TRAIN, "yes,,no", empty_name);
    expect_read_error(root, SPLIT_TRAIN, "yes,", empty_name);
    const char *const twice[] = {"'yes' is named twice", NULL};
    expect_read_error(root, SPLIT_TRAIN, "yes,no,yes", twice);
    const char *const not_word[] = {"not a word folder", NULL};
    expect_read_error(root, SPLIT_TRAIN, "yes,../sc", not_word);
    expect_read_error(root, SPLIT_TRAIN, "_background_noise_", not_word);
    const char *const bad_split[] = {"no split", NULL};
    expect_read_error(root, 7, "yes", bad_split);

    make_dir(root, "empty");
    const char *const no_clips[] = {"/empty'", "no .wav clips", NULL};
    expect_read_error(root, SPLIT_TRAIN, "yes,empty", no_clips);
}

TEST(speech_list_errors) {
    char root[1024], path[1100];
    tree_path(root, sizeof root);
    REQUIRE(make_tree(root), "fixture");

    snprintf(path, sizeof path, "%s/validation_list.txt", root);
    rename(path, at(root, "v.txt"));
    const char *const no_valid[] = {"validation_list.txt' is missing", "validation", NULL};
    expect_read_error(root, SPLIT_TRAIN, "yes,no,up", no_valid);
    rename(at(root, "v.txt"), path);

    snprintf(path, sizeof path, "%s/testing_list.txt", root);
    rename(path, at(root, "t.txt"));
    const char *const no_test[] = {"testing_list.txt' is missing", NULL};
    expect_read_error(root, SPLIT_VALID, "yes,no,up", no_test);
    rename(at(root, "t.txt"), path);

    write_text(at(root, "validation_list.txt"), "yes/b.wav\nyes/zzz.wav\n");
    const char *const missing_clip[] = {"validation_list.txt:2", "yes/zzz.wav", "does not exist", NULL};
    expect_read_error(root, SPLIT_TRAIN, "yes,no,up", missing_clip);
    expect_read_error(root, SPLIT_TEST, "sc35", missing_clip);

    write_text(at(root, "validation_list.txt"), "yes/b.wav\n\nyes\n");
    const char *const not_clip[] = {"validation_list.txt:3", "'yes' is not a clip", NULL};
    expect_read_error(root, SPLIT_TRAIN, "yes", not_clip);

    write_text(at(root, "validation_list.txt"), "yes/b.wav\nup/b.wav\n");
    const char *const both[] = {"up/b.wav", "in both", NULL};
    expect_read_error(root, SPLIT_TRAIN, "yes,no,up", both);
}

TEST(speech_bad_clip_named) {
    char root[1024];
    tree_path(root, sizeof root);
    REQUIRE(make_tree(root), "fixture");
    write_text(at(root, "no/c.wav"), "RIFF? no, just text\n");
    const char *const text[] = {"/no/c.wav'", "not a WAV file", NULL};
    expect_read_error(root, SPLIT_TRAIN, "yes,no,up", text);
    /* a clip of another split is not read, so not refused */
    write_text(at(root, "testing_list.txt"), "yes/c.wav\nup/b.wav\nno/c.wav\n");
    Examples ex;
    Error err = {{0}};
    CHECK(speech_commands_read(&ex, root, SPLIT_TRAIN, "yes,no,up", 100, &err) == 0, "%s", err.msg);
    examples_free(&ex);

    REQUIRE(write_wav(at(root, "up/c.wav"), 5, 16000, 8000, 1), "fixture");
    const char *const rate[] = {"/up/c.wav'", "8000 Hz", NULL};
    expect_read_error(root, SPLIT_TRAIN, "yes,no,up", rate);
    REQUIRE(write_wav(at(root, "up/c.wav"), 5, 16000, 16000, 2), "fixture");
    const char *const stereo[] = {"/up/c.wav'", "2 channels", NULL};
    expect_read_error(root, SPLIT_TRAIN, "up", stereo);
    REQUIRE(write_wav(at(root, "up/c.wav"), 5, 16000, 16000, 1), "fixture");
    REQUIRE(truncate(at(root, "up/c.wav"), 4000) == 0, "truncate");
    const char *const cut[] = {"/up/c.wav'", "truncated", NULL};
    expect_read_error(root, SPLIT_TRAIN, "up", cut);
}
