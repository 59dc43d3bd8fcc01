/* test_pathfinder.c — the Pathfinder generator (src/tasks/pathfinder.c) and
 * the PNG files (src/data/png.c): every label recomputed by an independent
 * flood fill over the image's bright pixels from one marker to the other
 * (both sizes, all three difficulties); balanced classes, and no statistic
 * that tells the labels apart; the counts of paddles and distractors and
 * the paths' lengths the spec and the LRA's parameters give; the release's
 * files read back; and png_read_gray's conversions and errors. */
#include <png.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../src/data/png.h"
#include "../src/tasks/pathfinder.h"
#include "test.h"

/* Whether a chain of bright pixels (>= bright), each step at most reach2
 * squared away, leads from a to b. A plain breadth-first search. */
static bool joined(const uint8_t *px, int W, int bright, int reach2, const int a[2], const int b[2]) {
    int r = 0;
    while ((r + 1) * (r + 1) <= reach2) r++;
    int *queue = malloc((size_t)W * (size_t)W * sizeof *queue);
    uint8_t *seen = calloc((size_t)W * (size_t)W, 1);
    int head = 0, tail = 0;
    queue[tail++] = a[0] * W + a[1], seen[a[0] * W + a[1]] = 1;
    bool found = false;
    while (head < tail && !found) {
        const int p = queue[head++], y = p / W, x = p % W;
        found = y == b[0] && x == b[1];
        for (int dy = -r; dy <= r; dy++)
            for (int dx = -r; dx <= r; dx++) {
                const int yy = y + dy, xx = x + dx;
                if (dy * dy + dx * dx > reach2 || yy < 0 || yy >= W || xx < 0 || xx >= W) continue;
                if (seen[yy * W + xx] || px[yy * W + xx] < bright) continue;
                seen[yy * W + xx] = 1, queue[tail++] = yy * W + xx;
            }
    }
    free(queue), free(seen);
    return found;
}

/* Draws n images of the spec, alternating labels, and checks each label
 * against the flood fill; returns how many disagreed. */
static int flood_fill_disagreements(const PathfinderSpec *s, int n, int *dark_markers) {
    PathfinderWork *w;
    Error err = {0};
    if (pathfinder_work_build(&w, s, &err)) {
        CHECK(0, "%s", err.msg);
        return n;
    }
    uint8_t *px = malloc((size_t)s->size * (size_t)s->size);
    int wrong = 0;
    *dark_markers = 0;
    for (int i = 0; i < n; i++) {
        Rng r = rng_make(11, rng_stream(RNG_TEST, 0x5046, (uint64_t)i));
        PathfinderImage im;
        if (pathfinder_draw(w, &r, i % 2, px, &im, &err)) {
            CHECK(0, "%s", err.msg);
            wrong++;
            continue;
        }
        for (int k = 0; k < 2; k++) *dark_markers += px[im.marker[k][0] * s->size + im.marker[k][1]] < s->bright;
        const bool linked = joined(px, s->size, s->bright, pathfinder_reach2(im.margin), im.marker[0], im.marker[1]);
        if (linked != (im.label == 1)) {
            if (wrong < 3)
                printf("    size %d length %d image %d: label %d, flood fill %d (markers %d,%d and %d,%d)\n", s->size,
                       s->contour_length, i, im.label, linked, im.marker[0][0], im.marker[0][1], im.marker[1][0],
                       im.marker[1][1]);
            wrong++;
        }
    }
    free(px);
    pathfinder_work_free(w);
    return wrong;
}

TEST(pathfinder_labels_agree_with_a_flood_fill) {
    const struct {
        int size, length, n;
    } cases[] = {{32, 14, 400}, {32, 9, 150}, {32, 6, 150}, {128, 14, 40}, {128, 6, 20}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        PathfinderSpec s = pathfinder_defaults(cases[c].size, cases[c].length);
        int dark = 0;
        const int wrong = flood_fill_disagreements(&s, cases[c].n, &dark);
        CHECK(wrong == 0, "size %d, contour length %d: %d of %d labels disagree with the flood fill", cases[c].size,
              cases[c].length, wrong, cases[c].n);
        CHECK(dark == 0, "size %d: %d marker centres are not bright", cases[c].size, dark);
    }
}

/* Counts, lengths, and no statistic that tells the classes apart. */
TEST(pathfinder_statistics_follow_the_spec) {
    const int sizes[2] = {32, 128}, n[2] = {200, 30};
    for (int c = 0; c < 2; c++) {
        PathfinderSpec s = pathfinder_defaults(sizes[c], 14);
        CHECK(s.distractor_length == 4 && s.n_distractors == (sizes[c] == 32 ? 5 : 8),
              "size %d: distractors of %d paddles, %d of them (spec: 14 div 3 = 4, %s)", sizes[c], s.distractor_length,
              s.n_distractors, sizes[c] == 32 ? "20 div 4 = 5" : "35 div 4 = 8");
        PathfinderWork *w;
        Error err = {0};
        REQUIRE(pathfinder_work_build(&w, &s, &err) == 0, "%s", err.msg);
        uint8_t *px = malloc((size_t)s.size * (size_t)s.size);
        double bright[2] = {0, 0}, distractors = 0, length = 0, lo = 1e9, hi = 0, apart[2] = {0, 0};
        int paddles_wrong = 0, count_wrong = 0, margins[4] = {0};
        for (int i = 0; i < n[c]; i++) {
            Rng r = rng_make(5, rng_stream(RNG_TEST, 0x5047, (uint64_t)i));
            PathfinderImage im;
            REQUIRE(pathfinder_draw(w, &r, i % 2, px, &im, &err) == 0, "%s", err.msg);
            paddles_wrong += im.target_paddles[0] != 14 || im.target_paddles[1] != 14;
            count_wrong +=
                im.n_distractors > s.n_distractors || im.n_paddles != 28 + im.n_distractors * s.distractor_length;
            distractors += im.n_distractors;
            for (int k = 0; k < 2; k++) {
                length += im.path_length[k];
                lo = im.path_length[k] < lo ? im.path_length[k] : lo,
                hi = im.path_length[k] > hi ? im.path_length[k] : hi;
            }
            for (int p = 0; p < s.size * s.size; p++) bright[im.label] += px[p] >= s.bright;
            const double dy = im.marker[0][0] - im.marker[1][0], dx = im.marker[0][1] - im.marker[1][1];
            apart[im.label] += sqrt(dy * dy + dx * dx);
            margins[im.margin]++;
        }
        const int half = n[c] / 2;
        length /= 2 * n[c], distractors /= n[c];
        /* a snake is its first paddle plus 13 more, each a gap of about 2 margins (less on a turn) and a paddle */
        const double m = sizes[c] == 32 ? 1 : 2.5, shortest = 14 * s.paddle_length + 13 * m,
                     longest = 14 * s.paddle_length + 13 * (2 * m + 1.5);
        printf(
            "    size %d: path %.1f px (%.1f..%.1f), distractors %.2f of %d, bright pixels %.1f / %.1f (labels 0 / 1), "
            "markers apart %.1f / %.1f px\n",
            sizes[c], length, lo, hi, distractors, s.n_distractors, bright[0] / half, bright[1] / half, apart[0] / half,
            apart[1] / half);
        CHECK(!paddles_wrong && !count_wrong,
              "size %d: %d images with target snakes not of 14 paddles, %d with bad counts", sizes[c], paddles_wrong,
              count_wrong);
        CHECK(length > shortest && length < longest, "size %d: mean path %.1f px outside (%.1f, %.1f)", sizes[c],
              length, shortest, longest);
        CHECK(distractors > 0.6 * s.n_distractors, "size %d: %.2f distractors on average, %d tried", sizes[c],
              distractors, s.n_distractors);
        CHECK(fabs(bright[0] - bright[1]) < 0.05 * bright[1], "size %d: bright pixels differ by label: %.1f vs %.1f",
              sizes[c], bright[0] / half, bright[1] / half);
        if (sizes[c] == 128)
            CHECK(margins[2] > 0 && margins[3] > 0, "Path-X draws margins 2 and 3: %d, %d", margins[2], margins[3]);
        free(px);
        pathfinder_work_free(w);
    }
}

/* The writer's metadata lines of one batch: labels and indices. */
static int read_metadata(const char *path, int *labels, int max, int batch, int *bad) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char line[512], folder[64], file[64], want[64];
    int n = 0;
    while (fgets(line, sizeof line, f) && n < max) {
        int index, label, fields = 0;
        char copy[512];
        snprintf(copy, sizeof copy, "%s", line);
        for (char *t = strtok(copy, " \n"); t; t = strtok(NULL, " \n")) fields++;
        snprintf(want, sizeof want, "sample_%d.png", n);
        if (fields != 11 || sscanf(line, "%63s %63s %d %d", folder, file, &index, &label) != 4 || index != n ||
            strcmp(file, want) != 0 || atoi(folder + 5) != batch || strncmp(folder, "imgs/", 5) != 0 ||
            (label != 0 && label != 1))
            ++*bad;
        labels[n++] = label;
    }
    fclose(f);
    return n;
}

TEST(pathfinder_writes_the_release_layout) {
    PathfinderSpec s = pathfinder_defaults(32, 14);
    s.n_images = 25, s.per_batch = 10, s.seed = 3;
    char dir[600];
    snprintf(dir, sizeof dir, "%s/pf", test_tmpdir());
    Error err = {0};
    REQUIRE(pathfinder_write(&s, dir, &err) == 0, "%s", err.msg);
    PathfinderWork *w;
    REQUIRE(pathfinder_work_build(&w, &s, &err) == 0, "%s", err.msg);
    uint8_t drawn[32 * 32], read[32 * 32];
    const int sizes[3] = {10, 10, 5};
    for (int b = 0; b < 3; b++) {
        char path[900];
        int labels[16], bad = 0, ones = 0;
        snprintf(path, sizeof path, "%s/curv_contour_length_14/metadata/%d.npy", dir, b);
        const int n = read_metadata(path, labels, 16, b, &bad);
        CHECK(n == sizes[b] && bad == 0, "%s: %d lines (%d malformed), want %d", path, n, bad, sizes[b]);
        snprintf(path, sizeof path, "%s/curv_contour_length_14/metadata/%d.npy.tmp", dir, b);
        CHECK(access(path, F_OK) != 0, "%s left behind", path);
        for (int i = 0; i < n; i++) {
            ones += labels[i];
            snprintf(path, sizeof path, "%s/curv_contour_length_14/imgs/%d/sample_%d.png", dir, b, i);
            if (png_read_gray(path, read, 32, 32, &err)) {
                CHECK(0, "%s", err.msg);
                continue;
            }
            Rng r = pathfinder_rng(&s, (size_t)(b * 10 + i));
            PathfinderImage im;
            REQUIRE(pathfinder_draw(w, &r, labels[i], drawn, &im, &err) == 0, "%s", err.msg);
            CHECK(memcmp(drawn, read, sizeof read) == 0, "%s differs from the image drawn for it", path);
        }
        CHECK(ones == n / 2 || (n % 2 && ones == n / 2 + 1), "batch %d: %d of %d positive", b, ones, n);
    }
    pathfinder_work_free(w);
    /* balanced over a larger batch, the labels shuffled */
    s.n_images = 200, s.per_batch = 200, s.seed = 4;
    REQUIRE(pathfinder_write(&s, dir, &err) == 0, "%s", err.msg);
    char path[900];
    int labels[200], bad = 0, ones = 0, runs = 1;
    snprintf(path, sizeof path, "%s/curv_contour_length_14/metadata/0.npy", dir);
    CHECK(read_metadata(path, labels, 200, 0, &bad) == 200 && !bad, "%s: 200 lines", path);
    for (int i = 0; i < 200; i++) ones += labels[i], runs += i && labels[i] != labels[i - 1];
    CHECK(ones == 100, "%d of 200 positive", ones);
    CHECK(runs > 70 && runs < 130, "labels not shuffled: %d runs in 200", runs);
    s.n_images = 3, s.per_batch = 1000, s.contour_length = 6;
    snprintf(path, sizeof path, "%s/curv_baseline/imgs/0/sample_2.png", dir);
    CHECK(pathfinder_write(&s, dir, &err) == 0 && png_read_gray(path, read, 32, 32, &err) == 0,
          "contour length 6 writes curv_baseline: %s", err.msg);
    s.paddle_thickness = 0.3f;
    CHECK(pathfinder_write(&s, dir, &err) != 0 && strstr(err.msg, "paddle_thickness"), "thickness 0.3 accepted");
}

TEST(pathfinder_draws_its_own_labels_evenly) {
    PathfinderSpec s = pathfinder_defaults(32, 6);
    PathfinderWork *w;
    Error err = {0};
    REQUIRE(pathfinder_work_build(&w, &s, &err) == 0, "%s", err.msg);
    uint8_t px[32 * 32];
    int ones = 0;
    for (int i = 0; i < 400; i++) {
        Rng r = rng_make(8, rng_stream(RNG_TEST, 0x5048, (uint64_t)i));
        PathfinderImage im;
        REQUIRE(pathfinder_draw(w, &r, -1, px, &im, &err) == 0, "%s", err.msg);
        ones += im.label;
    }
    CHECK(ones > 160 && ones < 240, "label -1: %d of 400 positive", ones);
    pathfinder_work_free(w);
}

/* A PNG of another kind, written with libpng: 8-bit RGB or 16-bit gray. */
static void write_other_png(const char *path, int color, int depth, const uint8_t *rows, int W, int H) {
    FILE *f = fopen(path, "wb");
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        fclose(f);
        return;
    }
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)W, (png_uint_32)H, depth, color, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    const int stride = W * (color == PNG_COLOR_TYPE_RGB ? 3 : 1) * depth / 8;
    for (int y = 0; y < H; y++) png_write_row(png, rows + y * stride);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    fclose(f);
}

TEST(png_round_trips_and_converts) {
    const char *dir = test_tmpdir();
    char path[600];
    uint8_t px[6 * 4], back[6 * 4];
    for (int i = 0; i < 24; i++) px[i] = (uint8_t)(i * 11);
    Error err = {0};
    snprintf(path, sizeof path, "%s/gray.png", dir);
    REQUIRE(png_write_gray(path, px, 6, 4, &err) == 0, "%s", err.msg);
    CHECK(png_read_gray(path, back, 6, 4, &err) == 0 && !memcmp(px, back, sizeof px), "gray round trip: %s", err.msg);
    uint8_t rgb[6 * 4 * 3], g16[6 * 4 * 2];
    for (int i = 0; i < 24; i++) {
        rgb[3 * i] = 200, rgb[3 * i + 1] = 100, rgb[3 * i + 2] = (uint8_t)(i * 10); /* R, G, B */
        g16[2 * i] = px[i], g16[2 * i + 1] = 0x80;                                  /* big-endian 16 bits */
    }
    snprintf(path, sizeof path, "%s/rgb.png", dir);
    write_other_png(path, PNG_COLOR_TYPE_RGB, 8, rgb, 6, 4);
    REQUIRE(png_read_gray(path, back, 6, 4, &err) == 0, "%s", err.msg);
    int off = 0;
    for (int i = 0; i < 24; i++) off += abs(back[i] - (int)lround(0.299 * 200 + 0.587 * 100 + 0.114 * i * 10)) > 1;
    CHECK(off == 0, "RGB to gray: %d pixels differ from 0.299 R + 0.587 G + 0.114 B", off);
    snprintf(path, sizeof path, "%s/g16.png", dir);
    write_other_png(path, PNG_COLOR_TYPE_GRAY, 16, g16, 6, 4);
    REQUIRE(png_read_gray(path, back, 6, 4, &err) == 0, "%s", err.msg);
    off = 0;
    for (int i = 0; i < 24; i++) off += abs(back[i] - (int)lround((px[i] * 256 + 0x80) / 257.0)) > 1;
    CHECK(off == 0, "16-bit gray scaled to 8: %d pixels off", off);
}

TEST(png_errors_name_the_file) {
    const char *dir = test_tmpdir();
    char path[600], cut[600], text[600], missing[600];
    uint8_t px[32 * 32];
    for (int i = 0; i < 32 * 32; i++) px[i] = (uint8_t)(i * 7 ^ i >> 3);
    Error err = {0};
    snprintf(path, sizeof path, "%s/whole.png", dir);
    REQUIRE(png_write_gray(path, px, 32, 32, &err) == 0, "%s", err.msg);
    FILE *f = fopen(path, "rb");
    REQUIRE(f != NULL, "cannot open %s", path);
    char bytes[8192];
    const size_t n = fread(bytes, 1, sizeof bytes, f);
    fclose(f);
    snprintf(cut, sizeof cut, "%s/cut.png", dir);
    test_write_file(cut, bytes, n / 2);
    CHECK(png_read_gray(cut, px, 32, 32, &err) != 0 && strstr(err.msg, cut) && strstr(err.msg, "truncated"),
          "a truncated PNG: '%s'", err.msg);
    test_write_file(cut, bytes, n - 4); /* cut inside the last chunk (IEND) */
    CHECK(png_read_gray(cut, px, 32, 32, &err) != 0 && strstr(err.msg, cut), "a PNG cut in IEND: '%s'", err.msg);
    snprintf(text, sizeof text, "%s/notes.png", dir);
    test_write_file(text, "imgs/0 sample_0.png 0 1\n", 24);
    CHECK(png_read_gray(text, px, 32, 32, &err) != 0 && strstr(err.msg, text) && strstr(err.msg, "not a PNG"),
          "a text file: '%s'", err.msg);
    test_write_file(text, "", 0);
    CHECK(png_read_gray(text, px, 32, 32, &err) != 0 && strstr(err.msg, "not a PNG"), "an empty file: '%s'", err.msg);
    CHECK(png_read_gray(path, px, 128, 128, &err) != 0 && strstr(err.msg, path) && strstr(err.msg, "32x32"),
          "a 32x32 image read as 128x128: '%s'", err.msg);
    snprintf(missing, sizeof missing, "%s/none.png", dir);
    CHECK(png_read_gray(missing, px, 32, 32, &err) != 0 && strstr(err.msg, missing), "a missing file: '%s'", err.msg);
    snprintf(missing, sizeof missing, "%s/no/such/dir.png", dir);
    CHECK(png_write_gray(missing, px, 32, 32, &err) != 0 && strstr(err.msg, missing), "an unwritable path: '%s'",
          err.msg);
}
