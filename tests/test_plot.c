/* test_plot.c — the SVG chart writer: a well-formed document, axes that hold
 * every drawable point, ticks inside the axes, escaped text. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../src/plot/chart.h"
#include "test.h"

/* Checks that every element opens and closes in order (<a ...> ... </a> or
 * <a .../>), attributes are quoted, and no '&' starts anything but an entity. */
static const char *well_formed(const char *s) {
    const char *stack[64];
    size_t lens[64], depth = 0;
    for (const char *p = s; *p; p++) {
        if (*p == '&' && strncmp(p, "&lt;", 4) && strncmp(p, "&gt;", 4) && strncmp(p, "&amp;", 5) &&
            strncmp(p, "&quot;", 6))
            return "bare &";
        if (*p != '<') continue;
        if (p[1] == '?') { /* the XML declaration */
            p = strstr(p, "?>");
            if (!p) return "unterminated <?";
            continue;
        }
        const char *end = strchr(p, '>');
        if (!end) return "unterminated tag";
        int quotes = 0;
        for (const char *q = p; q < end; q++) quotes += *q == '"';
        if (quotes % 2) return "unbalanced quotes";
        if (p[1] == '/') {
            size_t n = strcspn(p + 2, " >");
            if (!depth || lens[depth - 1] != n || strncmp(stack[depth - 1], p + 2, n)) return "mismatched close";
            depth--;
        } else if (end[-1] != '/') {
            if (depth == 64) return "too deep";
            stack[depth] = p + 1;
            lens[depth++] = strcspn(p + 1, " >");
        }
        p = end;
    }
    return depth ? "unclosed element" : NULL;
}

static void check_axis(const ChartAxis *a, double lo, double hi, const char *what) {
    CHECK(a->lo <= lo && a->hi >= hi, "%s axis [%g, %g] does not hold [%g, %g]", what, a->lo, a->hi, lo, hi);
    CHECK(a->n_ticks >= 2, "%s axis: %zu ticks", what, a->n_ticks);
    for (size_t i = 0; i < a->n_ticks; i++) {
        const double tol = 1e-9 * (a->hi - a->lo);
        CHECK(a->ticks[i] >= a->lo - tol && a->ticks[i] <= a->hi + tol, "%s tick %g outside the axis", what,
              a->ticks[i]);
        CHECK(i == 0 || a->ticks[i] > a->ticks[i - 1], "%s ticks not increasing", what);
    }
}

TEST(chart_svg_is_well_formed_and_holds_the_data) {
    const double T[] = {256, 1024, 4096, 16384, 65536}, fast[] = {5800, 5600, 5500, 5400, 5300},
                 slow[] = {4000, 2500, 900, 250, NAN}, neg[] = {-1.5, 0.25, 3.0, 7.75, 9.0};
    ChartSeries s[] = {{"linear <fast> & \"flat\"", T, fast, 5, false}, {"softmax", T, slow, 5, true}};
    Chart c = {"speed", "sequence length", "tokens/s", true, true, s, 2};
    StrBuf b;
    sb_init(&b);
    Error err = {0};
    REQUIRE(chart_svg(&c, &b, &err) == 0, "%s", err.msg);
    const char *bad = well_formed(b.data);
    CHECK(!bad, "SVG not well formed: %s", bad ? bad : "");
    CHECK(strstr(b.data, "linear &lt;fast&gt; &amp; &quot;flat&quot;") != NULL, "legend text escaped");
    CHECK(strstr(b.data, "<svg xmlns=\"http://www.w3.org/2000/svg\"") && strstr(b.data, "stroke-dasharray"), "svg root, dashes");
    ChartAxis x, y;
    REQUIRE(chart_axes(&c, &x, &y, &err) == 0, "%s", err.msg);
    check_axis(&x, 256, 65536, "log x");
    check_axis(&y, 250, 5800, "log y (NaN skipped)");
    sb_free(&b);
    ChartSeries lin = {"loss", T, neg, 5, false};
    Chart l = {"loss", "step", "loss", false, false, &lin, 1};
    REQUIRE(chart_axes(&l, &x, &y, &err) == 0, "%s", err.msg);
    check_axis(&x, 256, 65536, "linear x");
    check_axis(&y, -1.5, 9.0, "linear y");
    /* on a log axis only the positive points count; none at all is an error */
    Chart lg = {"loss", "step", "loss", false, true, &lin, 1};
    REQUIRE(chart_axes(&lg, &x, &y, &err) == 0, "%s", err.msg);
    check_axis(&y, 0.25, 9.0, "log y of mixed signs");
    const double zero[] = {0, 0};
    ChartSeries none = {"x", zero, zero, 2, false};
    Chart empty = {"empty", "", "", true, true, &none, 1};
    CHECK(chart_axes(&empty, &x, &y, &err) == -1 && strstr(err.msg, "no point"), "%s", err.msg);
}

/* The x attribute of the <text> element that holds s. */
static double text_x(const char *svg, const char *s) {
    const char *hit = strstr(svg, s);
    if (!hit) return NAN;
    const char *open = hit;
    while (open > svg && strncmp(open, "<text x=\"", 9)) open--;
    return strtod(open + 9, NULL);
}

/* Text at font-size 12 is estimated at 7 px per character (7.6 bold): long
 * titles and run names must fit inside the picture, whatever its width. */
TEST(chart_grows_to_hold_long_titles_and_names) {
    const double x[] = {1, 2, 3}, y[] = {3, 2, 1};
    const char *name = "wt2-fmm-fmm-2kernel-band20 valid, a run directory with a long name";
    const char *title = "WikiText-2 (valid as training text), FMMformer 16-layer model: softmax vs fmm, a long title";
    ChartSeries s[] = {{"short", x, y, 3, false}, {name, x, y, 3, true}};
    Chart c = {title, "step", "loss", false, false, s, 2};
    StrBuf b;
    sb_init(&b);
    Error err = {0};
    REQUIRE(chart_svg(&c, &b, &err) == 0, "%s", err.msg);
    const char *w = strstr(b.data, "<svg ");
    REQUIRE(w && (w = strstr(w, "width=\"")), "svg width");
    double width = strtod(w + 7, NULL);
    double name_x = text_x(b.data, name), title_x = text_x(b.data, title);
    CHECK(name_x + 7.0 * (double)strlen(name) <= width, "legend ends at %g, picture %g wide",
          name_x + 7.0 * (double)strlen(name), width);
    CHECK(title_x - 3.8 * (double)strlen(title) >= 0 && title_x + 3.8 * (double)strlen(title) <= width,
          "title spans %g .. %g of %g", title_x - 3.8 * (double)strlen(title), title_x + 3.8 * (double)strlen(title),
          width);
    sb_free(&b);
}
