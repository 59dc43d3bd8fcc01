/* chart.h — line charts as SVG, with no dependency beyond libc (seqlab plot).
 *
 * A chart is a few named series of (x, y) points drawn as lines with point
 * markers on linear or log10 axes. The axes span the data rounded out to
 * "nice" ticks (1, 2, 5 x 10^k on linear axes; powers of ten, or 1-2-5 steps
 * within a short decade range, on log axes).
 *
 *     ChartSeries s = {.name = "linear", .x = T, .y = tok_s, .n = 5};
 *     Chart c = {.title = "training speed", .x_label = "sequence length", .y_label = "tokens/s",
 *                .log_x = true, .log_y = true, .series = &s, .n_series = 1};
 *     if (chart_write_svg(&c, "speed.svg", &err)) ...
 */
#ifndef SEQLAB_CHART_H
#define SEQLAB_CHART_H

#include <stdbool.h>
#include <stddef.h>

#include "../core/error.h"
#include "../core/json.h"

typedef struct {
    const char *name;   /* legend text */
    const double *x, *y;/* borrowed, n points; non-finite or (on a log axis) non-positive points are skipped */
    size_t n;
    bool dashed;
} ChartSeries;

typedef struct {
    const char *title, *x_label, *y_label;
    bool log_x, log_y;
    const ChartSeries *series; /* borrowed */
    size_t n_series;
} Chart;

/* One axis as drawn: [lo, hi] (in data units) and its ticks. */
#define CHART_MAX_TICKS 24
typedef struct {
    double lo, hi;
    double ticks[CHART_MAX_TICKS];
    size_t n_ticks;
    bool log;
} ChartAxis;

/* The axes the chart is drawn on; -1 when no series has a drawable point. */
int chart_axes(const Chart *c, ChartAxis *x, ChartAxis *y, Error *err);
/* The SVG document in b (appended). */
int chart_svg(const Chart *c, StrBuf *b, Error *err);
/* Writes the SVG to path atomically. */
int chart_write_svg(const Chart *c, const char *path, Error *err);

#endif
