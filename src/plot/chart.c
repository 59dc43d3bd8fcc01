/* chart.c — see chart.h. */
#include "chart.h"

#include <math.h>
#include <string.h>

#include "../core/file.h"

enum { PLOT_WIDTH = 450, HEIGHT = 440, LEFT = 80, TOP = 40, BOTTOM = 60, LEGEND_MIN = 190, LEGEND_TEXT = 42 };

/* SVG cannot measure text, so the picture is sized from an estimate: at
 * font-size 12 a sans-serif character is under 7 px wide on average, a bold
 * one under 7.6. Long run names and titles then widen the picture instead of
 * running off its edge. */
static double text_width(const char *s, bool bold) {
    size_t chars = 0;
    for (; s && *s; s++) chars += ((unsigned char)*s & 0xC0) != 0x80; /* UTF-8: count code points */
    return (bold ? 7.6 : 7.0) * (double)chars;
}

/* Where the plot area ends and how wide the whole picture is. */
typedef struct {
    double plot_right;
    int width;
} Layout;

static Layout layout(const Chart *c) {
    double legend = LEGEND_MIN;
    for (size_t s = 0; s < c->n_series; s++)
        legend = fmax(legend, LEGEND_TEXT + text_width(c->series[s].name, false) + 12);
    double width = fmax(LEFT + PLOT_WIDTH + legend, text_width(c->title, true) + 40);
    return (Layout){LEFT + PLOT_WIDTH, (int)ceil(width)};
}

static const char *const colors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                                     "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};

static bool drawable(double v, bool log) { return isfinite(v) && (!log || v > 0); }

/* The data range of one coordinate over every drawable point. */
static bool data_range(const Chart *c, bool is_x, double *lo, double *hi) {
    bool any = false;
    for (size_t s = 0; s < c->n_series; s++)
        for (size_t i = 0; i < c->series[s].n; i++) {
            double x = c->series[s].x[i], y = c->series[s].y[i];
            if (!drawable(x, c->log_x) || !drawable(y, c->log_y)) continue;
            double v = is_x ? x : y;
            if (!any || v < *lo) *lo = v;
            if (!any || v > *hi) *hi = v;
            any = true;
        }
    return any;
}

/* 1, 2 or 5 times a power of ten, the smallest >= x. */
static double nice_step(double x) {
    double p = pow(10.0, floor(log10(x))), f = x / p;
    return (f <= 1.0 ? 1.0 : f <= 2.0 ? 2.0 : f <= 5.0 ? 5.0 : 10.0) * p;
}

static void linear_axis(ChartAxis *a, double lo, double hi) {
    if (hi <= lo) { /* one value: a unit range around it */
        double pad = fabs(lo) > 0 ? fabs(lo) * 0.1 : 1.0;
        lo -= pad, hi += pad;
    }
    double step = nice_step((hi - lo) / 6.0);
    a->lo = floor(lo / step) * step;
    a->hi = ceil(hi / step) * step;
    a->n_ticks = 0;
    for (double t = a->lo; t <= a->hi + 0.5 * step && a->n_ticks < CHART_MAX_TICKS; t += step)
        a->ticks[a->n_ticks++] = fabs(t) < 1e-12 * step ? 0.0 : t;
}

/* The largest 1-2-5 value <= v (down) or the smallest >= v (up). */
static double round125(double v, bool up) {
    const double steps[] = {1, 2, 5, 10};
    double p = pow(10.0, floor(log10(v))), f = v / p;
    if (up) {
        for (int k = 0; k < 4; k++)
            if (f <= steps[k] * (1 + 1e-12)) return steps[k] * p;
        return 10 * p;
    }
    for (int k = 3; k >= 0; k--)
        if (f >= steps[k] * (1 - 1e-12)) return steps[k] * p;
    return p;
}

/* From the 1-2-5 value below the data to the one above; ticks at every
 * 1-2-5 value over up to two decades, else at the powers of ten. */
static void log_axis(ChartAxis *a, double lo, double hi) {
    a->lo = round125(lo, false);
    a->hi = round125(hi, true);
    if (a->hi <= a->lo) a->hi = round125(a->lo * 1.5, true);
    const bool fine = log10(a->hi / a->lo) <= 2.0;
    const double steps[] = {1, 2, 5};
    a->n_ticks = 0;
    for (double e = floor(log10(a->lo)); e <= ceil(log10(a->hi)); e++)
        for (int k = 0; k < 3 && a->n_ticks < CHART_MAX_TICKS; k++) {
            double t = steps[k] * pow(10.0, e);
            if (t >= a->lo * (1 - 1e-12) && t <= a->hi * (1 + 1e-12) && (fine || k == 0)) a->ticks[a->n_ticks++] = t;
        }
}

int chart_axes(const Chart *c, ChartAxis *x, ChartAxis *y, Error *err) {
    double xl = 0, xh = 0, yl = 0, yh = 0;
    if (!data_range(c, true, &xl, &xh) || !data_range(c, false, &yl, &yh))
        return err_set(err, "chart '%s': no point to draw", c->title ? c->title : "");
    x->log = c->log_x;
    y->log = c->log_y;
    if (c->log_x) log_axis(x, xl, xh); else linear_axis(x, xl, xh);
    if (c->log_y) log_axis(y, yl, yh); else linear_axis(y, yl, yh);
    return 0;
}

/* Pixel position of v on an axis spanning [p0, p1] pixels. */
static double project(const ChartAxis *a, double v, double p0, double p1) {
    double f = a->log ? (log10(v) - log10(a->lo)) / (log10(a->hi) - log10(a->lo)) : (v - a->lo) / (a->hi - a->lo);
    return p0 + f * (p1 - p0);
}

static void text(StrBuf *b, double x, double y, const char *anchor, const char *extra, const char *s) {
    sb_appendf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\"%s>", x, y, anchor, extra);
    for (; *s; s++) { /* XML-escape */
        if (*s == '<') sb_appendf(b, "&lt;");
        else if (*s == '>') sb_appendf(b, "&gt;");
        else if (*s == '&') sb_appendf(b, "&amp;");
        else if (*s == '"') sb_appendf(b, "&quot;");
        else sb_append(b, s, 1);
    }
    sb_appendf(b, "</text>\n");
}

/* 2, 0.5, 20K, 1.5M, 1e-05. */
static void tick_label(char *buf, size_t n, double v) {
    if (fabs(v) >= 1e6) snprintf(buf, n, "%gM", v / 1e6);
    else if (fabs(v) >= 1e4) snprintf(buf, n, "%gK", v / 1e3);
    else if (v != 0 && fabs(v) < 1e-3) snprintf(buf, n, "%.0e", v);
    else snprintf(buf, n, "%g", v);
}

static void draw_axes(StrBuf *b, const Chart *c, const Layout *lay, const ChartAxis *x, const ChartAxis *y) {
    const double x0 = LEFT, x1 = lay->plot_right, y0 = HEIGHT - BOTTOM, y1 = TOP;
    char label[32];
    sb_appendf(b, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#444\"/>\n", LEFT, TOP,
               PLOT_WIDTH, HEIGHT - TOP - BOTTOM);
    for (size_t i = 0; i < x->n_ticks; i++) {
        double px = project(x, x->ticks[i], x0, x1);
        sb_appendf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", px, y0, px, y1);
        tick_label(label, sizeof label, x->ticks[i]);
        text(b, px, y0 + 18, "middle", "", label);
    }
    for (size_t i = 0; i < y->n_ticks; i++) {
        double py = project(y, y->ticks[i], y0, y1);
        sb_appendf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", x0, py, x1, py);
        tick_label(label, sizeof label, y->ticks[i]);
        text(b, x0 - 6, py + 4, "end", "", label);
    }
    text(b, (x0 + x1) / 2, HEIGHT - 18, "middle", "", c->x_label ? c->x_label : "");
    char rot[64];
    snprintf(rot, sizeof rot, " transform=\"rotate(-90 %d %d)\"", 18, (TOP + HEIGHT - BOTTOM) / 2);
    text(b, 18, (TOP + HEIGHT - BOTTOM) / 2.0, "middle", rot, c->y_label ? c->y_label : "");
    /* centred over the plot unless that would cut a long title at the left edge */
    double title_x = fmax((x0 + x1) / 2, text_width(c->title, true) / 2 + 20);
    text(b, title_x, 24, "middle", " font-weight=\"bold\"", c->title ? c->title : "");
}

static void draw_series(StrBuf *b, const Chart *c, const Layout *lay, size_t s, const ChartAxis *x,
                        const ChartAxis *y) {
    const ChartSeries *ser = &c->series[s];
    const char *color = colors[s % (sizeof colors / sizeof *colors)];
    const double x0 = LEFT, x1 = lay->plot_right, y0 = HEIGHT - BOTTOM, y1 = TOP;
    sb_appendf(b, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\"%s points=\"", color,
               ser->dashed ? " stroke-dasharray=\"6 4\"" : "");
    for (size_t i = 0; i < ser->n; i++)
        if (drawable(ser->x[i], c->log_x) && drawable(ser->y[i], c->log_y))
            sb_appendf(b, "%.1f,%.1f ", project(x, ser->x[i], x0, x1), project(y, ser->y[i], y0, y1));
    sb_appendf(b, "\"/>\n");
    for (size_t i = 0; ser->n <= 64 && i < ser->n; i++) /* markers, unless the line is dense */
        if (drawable(ser->x[i], c->log_x) && drawable(ser->y[i], c->log_y))
            sb_appendf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>\n", project(x, ser->x[i], x0, x1),
                       project(y, ser->y[i], y0, y1), color);
    double ly = TOP + 14 + 20.0 * (double)s;
    sb_appendf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"2\"%s/>\n",
               x1 + 12, ly - 4, x1 + 36, ly - 4, color, ser->dashed ? " stroke-dasharray=\"6 4\"" : "");
    text(b, x1 + LEGEND_TEXT, ly, "start", "", ser->name ? ser->name : "");
}

int chart_svg(const Chart *c, StrBuf *b, Error *err) {
    ChartAxis x, y;
    if (chart_axes(c, &x, &y, err)) return -1;
    const Layout lay = layout(c);
    sb_appendf(b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" "
                  "height=\"%d\" viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" font-size=\"12\">\n",
               lay.width, HEIGHT, lay.width, HEIGHT);
    sb_appendf(b, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
    draw_axes(b, c, &lay, &x, &y);
    for (size_t s = 0; s < c->n_series; s++) draw_series(b, c, &lay, s, &x, &y);
    sb_appendf(b, "</svg>\n");
    return b->failed ? err_set(err, "out of memory drawing '%s'", c->title ? c->title : "") : 0;
}

int chart_write_svg(const Chart *c, const char *path, Error *err) {
    StrBuf b;
    sb_init(&b);
    int rc = chart_svg(c, &b, err);
    const void *parts[] = {b.data};
    if (!rc) rc = file_write_atomic(path, parts, &b.len, 1, err);
    sb_free(&b);
    return rc;
}
