/* main.c — runs the registered unit tests; see test.h. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test.h"

typedef struct {
    const char *name;
    TestFn fn;
} TestCase;

static TestCase cases[1024];
static int case_count;
static int current_failed, current_skipped;
static char tmp_root[256];
static char tmp_current[512];

void test_register(const char *name, TestFn fn) {
    if (case_count < (int)(sizeof cases / sizeof cases[0])) cases[case_count++] = (TestCase){name, fn};
}

void test_fail(const char *file, int line, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stdout, "    %s:%d: ", file, line);
    vfprintf(stdout, fmt, ap);
    fprintf(stdout, "\n");
    va_end(ap);
    current_failed = 1;
}

void test_skip(const char *why) {
    fprintf(stdout, "    skipped: %s\n", why);
    current_skipped = 1;
}

const char *test_data_dir(void) {
    static char dir[1024];
    const char *env = getenv("SEQLAB_DATA");
    const char *candidates[] = {env, "../shared/data", "../../shared/data"};
    for (size_t i = 0; i < sizeof candidates / sizeof candidates[0]; i++) {
        struct stat st;
        if (candidates[i] && stat(candidates[i], &st) == 0 && S_ISDIR(st.st_mode)) {
            snprintf(dir, sizeof dir, "%s", candidates[i]);
            return dir;
        }
    }
    return NULL;
}

void test_write_file(const char *path, const char *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return;
    if (n) fwrite(data, 1, n, f);
    fclose(f);
}

const char *test_tmpdir(void) {
    static int serial;
    snprintf(tmp_current, sizeof tmp_current, "%s/t%d", tmp_root, ++serial);
    mkdir(tmp_current, 0700);
    return tmp_current;
}

static int by_name(const void *a, const void *b) {
    return strcmp(((const TestCase *)a)->name, ((const TestCase *)b)->name);
}

int main(int argc, char **argv) {
    const char *filter = argc > 1 ? argv[1] : NULL;
    snprintf(tmp_root, sizeof tmp_root, "/tmp/seqlab-test-XXXXXX");
    if (!mkdtemp(tmp_root)) {
        perror("mkdtemp");
        return 2;
    }
    qsort(cases, (size_t)case_count, sizeof cases[0], by_name);
    int passed = 0, failed = 0, skipped = 0;
    for (int i = 0; i < case_count; i++) {
        if (filter && !strstr(cases[i].name, filter)) continue;
        current_failed = current_skipped = 0;
        printf("%s\n", cases[i].name);
        fflush(stdout);
        cases[i].fn();
        if (current_failed) {
            failed++;
            printf("  FAIL %s\n", cases[i].name);
        } else if (current_skipped) {
            skipped++;
        } else {
            passed++;
        }
        fflush(stdout);
    }
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_root);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmp_root);
    printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
    return failed ? 1 : 0;
}
