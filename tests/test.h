/* test.h — the unit-test harness of seqlab.
 *
 * Each tests/test_*.c file defines tests with TEST(name) { ... } and checks
 * with CHECK(cond, "printf message", ...). tests/main.c runs every registered
 * test (or those whose name contains argv[1]) and ends with the line
 * "N passed, N failed, N skipped". A test that calls TEST_SKIP("why") is
 * counted as skipped.
 *
 * Adding a test: write TEST(my_case) { ... } in any tests/test_*.c file; the
 * Makefile links every such file into tests/unit.
 */
#ifndef SEQLAB_TEST_H
#define SEQLAB_TEST_H

#include <math.h>
#include <stdio.h>

typedef void (*TestFn)(void);
void test_register(const char *name, TestFn fn);
void test_fail(const char *file, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void test_skip(const char *why);
/* Directory of the shared data (../shared/data or $SEQLAB_DATA); NULL if absent. */
const char *test_data_dir(void);
/* Writes n bytes to path (a test's own file; failures show up as the test's). */
void test_write_file(const char *path, const char *data, size_t n);
/* A fresh temporary directory for this test (removed by the runner at exit). */
const char *test_tmpdir(void);

#define TEST(name)                                                                  \
    static void name(void);                                                         \
    __attribute__((constructor)) static void name##_register(void) { test_register(#name, name); } \
    static void name(void)

#define CHECK(cond, ...)                                                            \
    do {                                                                            \
        if (!(cond)) test_fail(__FILE__, __LINE__, __VA_ARGS__);                    \
    } while (0)

/* Fails and returns from the test function when cond is false. */
#define REQUIRE(cond, ...)                                                          \
    do {                                                                            \
        if (!(cond)) {                                                              \
            test_fail(__FILE__, __LINE__, __VA_ARGS__);                             \
            return;                                                                 \
        }                                                                           \
    } while (0)

#define TEST_SKIP(why)                                                              \
    do {                                                                            \
        test_skip(why);                                                             \
        return;                                                                     \
    } while (0)

#endif
