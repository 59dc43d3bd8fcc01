/* pathfinder.c — see pathfinder.h. The file follows the original's
 * procedure top to bottom: rounding helpers (snakes.py translate_coord,
 * flip_by_pi), PIL's Lanczos reduction and drawing at the antialias scale,
 * one paddle (draw_line_n_mask) and every paddle a margin can draw, the
 * markers (snakes2.py draw_circle), the canvas with its occupancy mask and
 * the connectivity rule seqlab adds, a snake's first paddle (seed_snake,
 * initialize_two_seeds) and the next ones (extend_snake, get_coords_cmf),
 * the two target snakes (two_snakes), distractors (make_many_snakes) and the
 * image (from_wrapper), then the spec, the work space and the writer. */
#include "pathfinder.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/file.h"
#include "../data/png.h"

enum {
    MAX_TARGET_TRIES = 1000000, /* the original retries the pair of targets for ever */
    MAX_NEAR = 64,              /* snake groups one paddle may touch (more: refused) */
    MAX_STEPS = 256,            /* pixels on the circle a snake's next head is drawn from */
};

/* ---- geometry, rounded as the original rounds ---- */

typedef struct {
    int y, x;
} Point;

/* translate_coord: p moved dist along theta (radians, y down), each
 * coordinate rounded up; translate_sc takes sin and cos of theta. */
static Point translate_sc(Point p, double sin_t, double cos_t, double dist) {
    return (Point){(int)ceil(p.y + dist * sin_t), (int)ceil(p.x + dist * cos_t)};
}

static Point translate(Point p, double theta, double dist) { return translate_sc(p, sin(theta), cos(theta), dist); }

/* flip_by_pi */
static double flip(double theta) { return theta < 0 ? theta + M_PI : theta - M_PI; }

static double radians(double deg) { return deg * M_PI / 180; }

static bool inside(Point p, int W) { return p.y >= 0 && p.y < W && p.x >= 0 && p.x < W; }

static float maxf(float a, float b) { return a > b ? a : b; }

/* numpy's randint(0, n). */
static int draw_int(Rng *r, int n) { return (int)(((uint64_t)rng_next(r) * (uint64_t)n) >> 32); }

/* A list of pixels or offsets. */
typedef struct {
    int n;
    Point *p;
} Points;

/* The offsets of a disk, dy² + dx² <= r2 (generate_dilation_struct for r2 = margin²). */
static int disk_build(Points *o, int r2, Error *err) {
    const int r = (int)floor(sqrt((double)r2));
    o->n = 0;
    if (!(o->p = xmalloc((size_t)(2 * r + 1) * (size_t)(2 * r + 1) * sizeof *o->p, err))) return -1;
    for (int dy = -r; dy <= r; dy++)
        for (int dx = -r; dx <= r; dx++)
            if (dy * dy + dx * dx <= r2) o->p[o->n++] = (Point){dy, dx};
    return 0;
}

/* ---- PIL's Lanczos reduction of an 8-bit image (scipy.misc.imresize, interp='lanczos') ---- */

/* Per output pixel: its first input pixel, how many, and their weights:
 * lanczos3 stretched by the reduction factor, normalised to sum 1 (PIL
 * Resample.c precompute_coeffs). Outputs [clean_lo, clean_hi] have whole,
 * unclipped kernels. */
typedef struct {
    int in, out, taps, clean_lo, clean_hi;
    int *first, *count; /* (out) */
    float *w;           /* (out, taps) */
} Lanczos;

static double sinc(double x) { return x == 0 ? 1 : sin(x * M_PI) / (x * M_PI); }
static double lanczos3(double x) { return x >= -3 && x < 3 ? sinc(x) * sinc(x / 3) : 0; }

static int lanczos_build(Lanczos *l, int in, int out, Error *err) {
    const double scale = (double)in / out, fscale = scale < 1 ? 1 : scale, support = 3 * fscale;
    l->in = in, l->out = out, l->taps = (int)ceil(support) * 2 + 1, l->clean_lo = out, l->clean_hi = -1;
    l->first = xmalloc((size_t)out * sizeof *l->first, err);
    l->count = xmalloc((size_t)out * sizeof *l->count, err);
    l->w = xcalloc((size_t)out * (size_t)l->taps, sizeof *l->w, err);
    if (!l->first || !l->count || !l->w) return -1;
    double *k = xmalloc((size_t)l->taps * sizeof *k, err);
    if (!k) return -1;
    for (int o = 0; o < out; o++) {
        const double center = (o + 0.5) * scale;
        const int lo0 = (int)(center - support + 0.5), hi0 = (int)(center + support + 0.5);
        const int lo = lo0 < 0 ? 0 : lo0, hi = hi0 > in ? in : hi0;
        if (lo0 >= 0 && hi0 <= in) l->clean_lo = o < l->clean_lo ? o : l->clean_lo, l->clean_hi = o;
        double sum = 0;
        l->first[o] = lo, l->count[o] = hi - lo < l->taps ? hi - lo : l->taps;
        for (int i = 0; i < l->count[o]; i++) sum += k[i] = lanczos3((lo + i - center + 0.5) / fscale);
        for (int i = 0; i < l->count[o]; i++)
            l->w[(size_t)o * (size_t)l->taps + (size_t)i] = (float)(sum ? k[i] / sum : 0);
    }
    free(k);
    return 0;
}

static void lanczos_free(Lanczos *l) { free(l->first), free(l->count), free(l->w); }

/* PIL rounds each pass to 8 bits: round half up, clip to 0..255. */
static uint8_t clip8(float v) {
    v = floorf(v + 0.5f);
    return v <= 0 ? 0 : v >= 255 ? 255 : (uint8_t)v;
}

/* src (in x in) -> dst (out x out): the horizontal pass into tmp (in x
 * out), then the vertical one. */
static void lanczos_apply(const Lanczos *l, const uint8_t *src, uint8_t *tmp, uint8_t *dst) {
    const int n = l->in, m = l->out, T = l->taps;
    for (int y = 0; y < n; y++)
        for (int o = 0; o < m; o++) {
            const float *k = l->w + (size_t)o * (size_t)T;
            const uint8_t *s = src + (size_t)y * (size_t)n + l->first[o];
            float acc = 0;
            for (int i = 0; i < l->count[o]; i++) acc += k[i] * s[i];
            tmp[(size_t)y * (size_t)m + (size_t)o] = clip8(acc);
        }
    for (int o = 0; o < m; o++) {
        const float *k = l->w + (size_t)o * (size_t)T;
        for (int x = 0; x < m; x++) {
            float acc = 0;
            for (int i = 0; i < l->count[o]; i++) acc += k[i] * tmp[(size_t)(l->first[o] + i) * (size_t)m + (size_t)x];
            dst[(size_t)o * (size_t)m + (size_t)x] = clip8(acc);
        }
    }
}

/* ---- drawing at the antialias scale (PIL ImageDraw.line, cv2.dilate) ---- */

/* A pen one pixel wide: Bresenham from (x0, y0) to (x1, y1), both ends set
 * (PIL line8, then the last point). */
static void line_thin(uint8_t *im, int n, int x0, int y0, int x1, int y1) {
    const int dx = abs(x1 - x0), dy = abs(y1 - y0), xs = x1 >= x0 ? 1 : -1, ys = y1 >= y0 ? 1 : -1;
    const bool steep = dy > dx;
    int e = steep ? 2 * dx - dy : 2 * dy - dx;
    for (int i = 0; i <= (steep ? dy : dx); i++) {
        if (x0 >= 0 && x0 < n && y0 >= 0 && y0 < n) im[y0 * n + x0] = 255;
        if (steep) {
            if (e >= 0) x0 += xs, e -= 2 * dy;
            e += 2 * dx, y0 += ys;
        } else {
            if (e >= 0) y0 += ys, e -= 2 * dx;
            e += 2 * dy, x0 += xs;
        }
    }
}

/* PIL's rounding of half-pen offsets (Draw.c ROUND_UP, ROUND_DOWN: halves go up / toward zero). */
static int round_up(double f) { return (int)(f >= 0 ? floor(f + 0.5) : -floor(fabs(f) + 0.5)); }
static int round_down(double f) { return (int)(f >= 0 ? ceil(f - 0.5) : -ceil(fabs(f) - 0.5)); }

/* A wider pen: the quad PIL's ImagingDrawWideLine spans around the segment,
 * every pixel whose centre lies in it or on its edge set. */
static void line_wide(uint8_t *im, int n, int x0, int y0, int x1, int y1, int width) {
    const int dx = x1 - x0, dy = y1 - y0;
    if (!dx && !dy) {
        if (x0 >= 0 && x0 < n && y0 >= 0 && y0 < n) im[y0 * n + x0] = 255;
        return;
    }
    const double big = hypot(dx, dy), small = (width - 1) / 2.0;
    const double rmax = round_up(small) / big, rmin = round_down(small) / big;
    const int dxmin = round_down(rmin * dy), dxmax = round_down(rmax * dy);
    const int dymin = round_down(rmin * dx), dymax = round_down(rmax * dx);
    const int v[4][2] = {
        {x0 - dxmin, y0 + dymax}, {x1 - dxmin, y1 + dymax}, {x1 + dxmax, y1 - dymin}, {x0 + dxmax, y0 - dymin}};
    int lo_x = n, hi_x = -1, lo_y = n, hi_y = -1;
    for (int k = 0; k < 4; k++) {
        lo_x = v[k][0] < lo_x ? v[k][0] : lo_x, hi_x = v[k][0] > hi_x ? v[k][0] : hi_x;
        lo_y = v[k][1] < lo_y ? v[k][1] : lo_y, hi_y = v[k][1] > hi_y ? v[k][1] : hi_y;
    }
    for (int y = lo_y < 0 ? 0 : lo_y; y <= hi_y && y < n; y++)
        for (int x = lo_x < 0 ? 0 : lo_x; x <= hi_x && x < n; x++) {
            int pos = 0, neg = 0;
            for (int k = 0; k < 4; k++) {
                const int *a = v[k], *b = v[(k + 1) & 3];
                const long c = (long)(b[0] - a[0]) * (y - a[1]) - (long)(b[1] - a[1]) * (x - a[0]);
                pos += c > 0, neg += c < 0;
            }
            if (!pos || !neg) im[y * n + x] = 255;
        }
}

/* cv2.dilate of a 0/255 image with a disk. */
static void dilate(const uint8_t *in, uint8_t *out, int n, const Points *disk) {
    memset(out, 0, (size_t)n * (size_t)n);
    for (int y = 0; y < n; y++)
        for (int x = 0; x < n; x++) {
            if (!in[y * n + x]) continue;
            for (int k = 0; k < disk->n; k++) {
                const int yy = y + disk->p[k].y, xx = x + disk->p[k].x;
                if (yy >= 0 && yy < n && xx >= 0 && xx < n) out[yy * n + xx] = 255;
            }
        }
}

/* ---- what the connectivity rule needs of a paddle or a marker ---- */

static bool within(Point a, Point b, int reach2) {
    const int dy = a.y - b.y, dx = a.x - b.x;
    return dy * dy + dx * dx <= reach2;
}

/* Whether some pixel of a lies within reach of some pixel of b. */
static bool touch(const Points *a, const Points *b, int reach2) {
    for (int i = 0; i < a->n; i++)
        for (int j = 0; j < b->n; j++)
            if (within(a->p[i], b->p[j], reach2)) return true;
    return false;
}

/* Whether the pixels are one group under the reach (a flood fill over a few
 * pixels; reorders them). */
static bool connected(Points *a, int reach2) {
    if (a->n == 0) return false;
    int done = 1; /* p[0..done) reached; grown by swapping reached pixels forward */
    for (int i = 0; i < done; i++)
        for (int j = done; j < a->n; j++)
            if (within(a->p[i], a->p[j], reach2)) {
                const Point t = a->p[done];
                a->p[done++] = a->p[j], a->p[j] = t;
            }
    return done == a->n;
}

/* A paddle's or marker's pixels as offsets from its centre: all it paints
 * (with their intensities), those surely bright whatever the image's
 * brightest pixel (core), those that may be bright (halo), and every pixel
 * within reach of the halo (near). */
typedef struct {
    Points px, core, halo, near;
    float *v;            /* (px.n) intensities */
    bool core_connected; /* the core is one group under the reach */
} Footprint;

static void footprint_free(Footprint *f) {
    free(f->px.p), free(f->core.p), free(f->halo.p), free(f->near.p), free(f->v);
}

/* The footprint of the pixels px (offsets, intensities v; taken over). */
static int footprint_build(Footprint *f, Points px, float *v, float core_level, float halo_level, const Points *reach,
                           int reach2, Error *err) {
    f->px = px, f->v = v;
    f->core = (Points){0, xmalloc(((size_t)px.n + 1) * sizeof(Point), err)};
    f->halo = (Points){0, xmalloc(((size_t)px.n + 1) * sizeof(Point), err)};
    f->near = (Points){0, xmalloc(((size_t)px.n * (size_t)reach->n + 1) * sizeof(Point), err)};
    if (!f->core.p || !f->halo.p || !f->near.p) return -1;
    for (int i = 0; i < px.n; i++) {
        if (v[i] >= core_level) f->core.p[f->core.n++] = px.p[i];
        if (v[i] >= halo_level) f->halo.p[f->halo.n++] = px.p[i];
    }
    int span = 0; /* offsets of near lie within span of the centre */
    for (int i = 0; i < px.n; i++)
        span = abs(px.p[i].y) > span ? abs(px.p[i].y) : span, span = abs(px.p[i].x) > span ? abs(px.p[i].x) : span;
    for (int j = 0; j < reach->n; j++) span = abs(reach->p[j].y) > span ? abs(reach->p[j].y) : span;
    span *= 2;
    const int side = 2 * span + 1;
    bool *seen = xcalloc((size_t)side * (size_t)side, sizeof *seen, err);
    if (!seen) return -1;
    for (int i = 0; i < f->halo.n; i++)
        for (int j = 0; j < reach->n; j++) {
            const Point q = {f->halo.p[i].y + reach->p[j].y, f->halo.p[i].x + reach->p[j].x};
            bool *at = &seen[(q.y + span) * side + (q.x + span)];
            if (!*at) *at = true, f->near.p[f->near.n++] = q;
        }
    free(seen);
    Points core = {f->core.n, xmalloc(((size_t)f->core.n + 1) * sizeof(Point), err)};
    if (!core.p) return -1;
    memcpy(core.p, f->core.p, (size_t)core.n * sizeof(Point));
    f->core_connected = connected(&core, reach2);
    free(core.p);
    return 0;
}

/* ---- one paddle (draw_line_n_mask) and every paddle of a margin ---- */

/* A paddle drawn in a window of S x S pixels around its start, S = 2R + 1,
 * R = paddle_length + ceil(thickness) + margin: its intensity before the
 * contrast and its mask (the line dilated by the margin), both 0..1, and
 * its footprints with the targets' and the distractors' contrast. */
typedef struct {
    float *line, *mask; /* (S, S) */
    Points spread;      /* offsets of the mask's nonzero pixels, */
    float *spread_v;    /* their values, */
    int n_solid;        /* the first n_solid of them >= 0.8 (only those can collide) */
    Footprint fp[2];    /* 0: target contrast, 1: distractor contrast */
} Drawn;

/* A later paddle's head relative to its pivot: one pixel of the circle of
 * radius step that get_coords_cmf samples (the floor of step * (sin, cos)
 * at each pixel of arc, once each, sorted by (dy, dx)), its orientation and
 * its paddle, drawn from the head back toward the pivot. */
typedef struct {
    int dy, dx;
    double orientation;
    Drawn d;
} Step;

/* What one margin needs: the window's sizes, the reduction, the disks, and
 * every paddle it can draw (they only depend on the orientation). */
typedef struct {
    int W, margin, R, S, Saa, step; /* step: pixels from a pivot to the next head, paddle_length + margin */
    int reach2;                     /* pathfinder_reach2(margin) */
    Lanczos lz;                     /* Saa -> S */
    Points disk_aa, disk, reach;    /* radius margin * antialias, margin, and the connectivity rule's */
    Drawn by_degree[360];           /* a seed's paddle, by orientation in degrees + 180 */
    Points structs[360];            /* a seed's dilation struct, by degree + 180 */
    Points fresh[360];              /* the first target's free tails on an empty canvas, by degree + 180 */
    Step steps[MAX_STEPS];
    int n_steps;
    double *turn;          /* (360 + n_steps, n_steps): cos²(min(turn * continuity, 90°)) from a
                              heading (a seed's degree + 180, or 360 + a step) to a step */
    double *sin_h, *cos_h; /* (360 + n_steps): of each heading */
    float peak;            /* the brightest pixel of any paddle, before the contrast */
    Footprint marker;      /* a marker whose window and kernels are whole (most) */
    Footprint **edge;      /* (W, W): markers near the edge, drawn on first use (owned) */
} Kit;

/* The paddle starting at the window's centre along theta, drawn antialias
 * times larger with a pen of thickness * antialias, reduced; its mask is the
 * big line dilated by margin * antialias, reduced. */
static int paddle_draw(const PathfinderSpec *s, const Kit *k, double theta, Drawn *d, Error *err) {
    const int aa = s->antialias, n = k->Saa, C = k->R * aa, pen = (int)lround(s->paddle_thickness * aa);
    const size_t S2 = (size_t)k->S * (size_t)k->S, N2 = (size_t)n * (size_t)n;
    uint8_t *big = xmalloc(2 * N2 + (size_t)n * (size_t)k->S + S2, err);
    d->line = xmalloc(2 * S2 * sizeof *d->line, err);
    if (!big || !d->line) return free(big), -1;
    uint8_t *big_mask = big + N2, *tmp = big_mask + N2, *small = tmp + (size_t)n * (size_t)k->S;
    d->mask = d->line + S2;
    const Point head = translate((Point){C, C}, theta, (double)s->paddle_length * aa);
    memset(big, 0, N2);
    if (pen <= 1)
        line_thin(big, n, C, C, head.x, head.y);
    else
        line_wide(big, n, C, C, head.x, head.y, pen);
    lanczos_apply(&k->lz, big, tmp, small);
    for (size_t i = 0; i < S2; i++) d->line[i] = small[i] / 255.0f;
    dilate(big, big_mask, n, &k->disk_aa);
    lanczos_apply(&k->lz, big_mask, tmp, small);
    for (size_t i = 0; i < S2; i++) d->mask[i] = small[i] / 255.0f;
    free(big);
    d->spread = (Points){0, xmalloc(S2 * sizeof(Point), err)};
    d->spread_v = xmalloc(S2 * sizeof *d->spread_v, err);
    if (!d->spread.p || !d->spread_v) return -1;
    for (int pass = 0; pass < 2; pass++) { /* the solid pixels first */
        for (int a = 0; a < k->S; a++)
            for (int b = 0; b < k->S; b++) {
                const float m = d->mask[a * k->S + b];
                if (m > 0 && (m >= 0.8f) == (pass == 0))
                    d->spread_v[d->spread.n] = m, d->spread.p[d->spread.n++] = (Point){a - k->R, b - k->R};
            }
        if (pass == 0) d->n_solid = d->spread.n;
    }
    return 0;
}

/* seed_snake's struct: the seed paddle's mask drawn one pixel down and right
 * of the centre of a (2 step + 1)² window, its pixels of value 1 as offsets
 * from that centre. A tail is free when none of them lands on the mask. */
static int struct_build(Points *o, const Kit *k, const Drawn *d, Error *err) {
    if (!(o->p = xmalloc((size_t)k->S * (size_t)k->S * sizeof *o->p, err))) return -1;
    o->n = 0;
    for (int a = 0; a < k->S; a++)
        for (int b = 0; b < k->S; b++) {
            const int dy = a - k->R + 1, dx = b - k->R + 1;
            if (d->mask[a * k->S + b] == 1.0f && abs(dy) <= k->step && abs(dx) <= k->step)
                o->p[o->n++] = (Point){dy, dx};
        }
    return 0;
}

/* Every paddle this margin can draw: seeds at each whole degree with their
 * structs, later paddles at each step get_coords_cmf can take. */
static int kit_build(Kit *k, const PathfinderSpec *s, int margin, Error *err) {
    const int aa = s->antialias;
    k->W = s->size, k->margin = margin, k->step = s->paddle_length + margin, k->reach2 = pathfinder_reach2(margin);
    if (!(k->edge = xcalloc((size_t)s->size * (size_t)s->size, sizeof *k->edge, err))) return -1;
    k->R = s->paddle_length + (int)ceil(s->paddle_thickness) + margin, k->S = 2 * k->R + 1, k->Saa = 2 * k->R * aa + 1;
    if (lanczos_build(&k->lz, k->Saa, k->S, err) || disk_build(&k->disk_aa, margin * aa * margin * aa, err) ||
        disk_build(&k->disk, margin * margin, err) || disk_build(&k->reach, k->reach2, err))
        return -1;
    for (int deg = -180; deg < 180; deg++)
        if (paddle_draw(s, k, radians(deg), &k->by_degree[deg + 180], err) ||
            struct_build(&k->structs[deg + 180], k, &k->by_degree[deg + 180], err))
            return -1;
    const double per_pixel = 360.0 / (2 * k->step * M_PI);
    const int n_angles = (int)ceil(360.0 / per_pixel);
    k->n_steps = 0;
    for (int i = 0; i < n_angles; i++) {
        const double a = radians(i * per_pixel);
        const int dy = (int)floor(k->step * sin(a)), dx = (int)floor(k->step * cos(a));
        int at = k->n_steps; /* sorted by (dy, dx), each once (np.unique) */
        while (at > 0 && (k->steps[at - 1].dy > dy || (k->steps[at - 1].dy == dy && k->steps[at - 1].dx > dx))) at--;
        if (at > 0 && k->steps[at - 1].dy == dy && k->steps[at - 1].dx == dx) continue;
        if (k->n_steps == MAX_STEPS) return err_set(err, "pathfinder: paddle_length + margin is too large");
        memmove(k->steps + at + 1, k->steps + at, (size_t)(k->n_steps - at) * sizeof *k->steps);
        k->steps[at] = (Step){.dy = dy, .dx = dx, .orientation = atan2(dy, dx)};
        k->n_steps++;
    }
    for (int i = 0; i < k->n_steps; i++)
        if (paddle_draw(s, k, flip(k->steps[i].orientation), &k->steps[i].d, err)) return -1;
    k->turn = xmalloc((size_t)(360 + k->n_steps) * (size_t)k->n_steps * sizeof *k->turn, err);
    k->sin_h = xmalloc((size_t)(360 + k->n_steps) * sizeof *k->sin_h, err);
    k->cos_h = xmalloc((size_t)(360 + k->n_steps) * sizeof *k->cos_h, err);
    if (!k->turn || !k->sin_h || !k->cos_h) return -1;
    for (int h = 0; h < 360 + k->n_steps; h++) {
        const double o = h < 360 ? radians(h - 180) : k->steps[h - 360].orientation;
        k->sin_h[h] = sin(o), k->cos_h[h] = cos(o);
    }
    for (int from = 0; from < 360 + k->n_steps; from++)
        for (int to = 0; to < k->n_steps; to++) {
            const double o = from < 360 ? radians(from - 180) : k->steps[from - 360].orientation;
            double turn = fabs(k->steps[to].orientation - o);
            turn = fmin(fmin(turn, 2 * M_PI - turn) * s->continuity, M_PI / 2);
            const double c = fmax(cos(turn), 0);
            k->turn[(size_t)from * (size_t)k->n_steps + (size_t)to] = c * c;
        }
    const size_t S2 = (size_t)k->S * (size_t)k->S;
    k->peak = 0;
    for (int deg = 0; deg < 360; deg++)
        for (size_t i = 0; i < S2; i++) k->peak = maxf(k->peak, k->by_degree[deg].line[i]);
    for (int j = 0; j < k->n_steps; j++)
        for (size_t i = 0; i < S2; i++) k->peak = maxf(k->peak, k->steps[j].d.line[i]);
    return 0;
}

/* The paddle's footprints once the levels are known. */
static int drawn_footprints(Drawn *d, const Kit *k, const float contrast[2], float core_level, float halo_level,
                            Error *err) {
    for (int c = 0; c < 2; c++) {
        Points px = {0, xmalloc((size_t)k->S * (size_t)k->S * sizeof(Point), err)};
        float *v = xmalloc((size_t)k->S * (size_t)k->S * sizeof *v, err);
        if (!px.p || !v) return free(px.p), free(v), -1;
        for (int a = 0; a < k->S; a++)
            for (int b = 0; b < k->S; b++)
                if (d->line[a * k->S + b] > 0)
                    v[px.n] = d->line[a * k->S + b] * contrast[c], px.p[px.n++] = (Point){a - k->R, b - k->R};
        if (footprint_build(&d->fp[c], px, v, core_level, halo_level, &k->reach, k->reach2, err)) return -1;
    }
    return 0;
}

static void drawn_free(Drawn *d) {
    free(d->line), free(d->spread.p), free(d->spread_v);
    footprint_free(&d->fp[0]), footprint_free(&d->fp[1]);
}

static void kit_free(Kit *k) {
    lanczos_free(&k->lz);
    free(k->disk_aa.p), free(k->disk.p), free(k->reach.p);
    for (int i = 0; i < 360; i++) drawn_free(&k->by_degree[i]), free(k->structs[i].p), free(k->fresh[i].p);
    for (int i = 0; i < k->n_steps; i++) drawn_free(&k->steps[i].d);
    footprint_free(&k->marker);
    free(k->turn), free(k->sin_h), free(k->cos_h);
    for (int i = 0; k->edge && i < k->W * k->W; i++)
        if (k->edge[i]) footprint_free(k->edge[i]), free(k->edge[i]);
    free(k->edge);
}

/* ---- the work space and the canvas ---- */

/* A pixel as it was before a failed snake changed it. */
typedef struct {
    int at;
    float image, mask;
    int16_t owner;
} Saved;

/* A snake being grown. */
typedef struct {
    int id;                      /* 0, 1: the targets; 2...: distractors (the union-find's index) */
    int kind;                    /* 0: target, 1: distractor (which footprint) */
    Point tail, head;            /* its first paddle's start (a marker's place) and its newest head */
    Point pivot;                 /* where the next paddle turns: a margin beyond the head */
    double orientation;          /* of the newest paddle, radians */
    int heading;                 /* the same as a row of Kit.turn */
    const Drawn *last;           /* the newest paddle: its mask joins the canvas' mask with the next paddle */
    Point last_at;               /* where it lies */
    Points core;                 /* the newest paddle's surely bright pixels (owned) */
    int n;                       /* paddles */
    double length, end_y, end_x; /* drawn path so far and where it ends */
} Snake;

struct PathfinderWork {
    PathfinderSpec spec;              /* a copy */
    int W, n_snakes;                  /* the side; the targets and distractors */
    Lanczos full;                     /* W * antialias -> W, for the markers */
    Kit kits[PATHFINDER_MAX_MARGINS]; /* one per margin */
    float *image, *mask;              /* (W, W): paddle intensities; occupancy 0..1 */
    float *empty_mask;                /* (W, W): the padding */
    int16_t *owner;                   /* (W, W): the snake whose maybe-bright pixels cover it, -1 none */
    int16_t *parent;                  /* (n_snakes): union-find of snakes whose bright pixels may touch */
    Saved *saved;                     /* (W, W): pixels changed since canvas_mark, as they were */
    int n_saved;                      /* entries of saved */
    uint32_t *stamp, epoch;           /* (W, W): a pixel is in saved when its stamp is the epoch */
    int16_t *keep_parent;             /* the union-find at canvas_mark */
    uint8_t *occupied;                /* (W, W) scratch of the seed search */
    int *free_pix;                    /* (W, W) */
    int marker_half;                  /* the marker's window: 2 marker_half + 1 pixels square */
    float *marker_tmp;                /* (rows of the big disk, window) */
    bool out_of_memory;               /* drawing a marker failed */
    Points core, mcore, halo;         /* scratch of place() */
    Snake snakes[2], distractor;      /* the targets; the distractor being grown */
    float halo_level, core_level;     /* intensities below which a pixel is surely dark / at which surely bright */
    float max_low;                    /* the least the brightest pixel can be: a marker's peak */
};

static int find(int16_t *parent, int a) {
    while (parent[a] != a) a = parent[a] = parent[parent[a]];
    return a;
}

/* draw_circle: the disk of radius marker_radius around at, drawn antialias
 * times larger over the whole image and reduced to W x W by the same filter;
 * only the window it reaches is computed. Its pixels inside the image as
 * offsets from at, values 0..1, into px and v. */
static void marker_pixels(PathfinderWork *w, Point at, Points *px, float *v) {
    const PathfinderSpec *s = &w->spec;
    const int W = w->W, aa = s->antialias, h = w->marker_half, side = 2 * h + 1, T = w->full.taps;
    const double ra = (double)s->marker_radius * aa, cy = (double)at.y * aa, cx = (double)at.x * aa;
    const int row0 = (int)ceil(cy - ra) < 0 ? 0 : (int)ceil(cy - ra);
    const int row1 = (int)floor(cy + ra) >= W * aa ? W * aa - 1 : (int)floor(cy + ra);
    for (int i = row0; i <= row1; i++) /* horizontal pass: the disk's rows only, the others reduce to 0 */
        for (int c = 0; c < side; c++) {
            const int x = at.x - h + c;
            float acc = 0;
            for (int t = 0; x >= 0 && x < W && t < w->full.count[x]; t++) {
                const int j = w->full.first[x] + t;
                if ((j - cx) * (j - cx) + (i - cy) * (i - cy) <= ra * ra)
                    acc += w->full.w[(size_t)x * (size_t)T + (size_t)t] * 255;
            }
            w->marker_tmp[(i - row0) * side + c] = clip8(acc);
        }
    px->n = 0;
    for (int r = 0; r < side; r++) {
        const int y = at.y - h + r;
        for (int c = 0; c < side && y >= 0 && y < W; c++) {
            const int x = at.x - h + c;
            if (x < 0 || x >= W) continue;
            float acc = 0;
            for (int t = 0; t < w->full.count[y]; t++) {
                const int i = w->full.first[y] + t;
                if (i >= row0 && i <= row1)
                    acc += w->full.w[(size_t)y * (size_t)T + (size_t)t] * w->marker_tmp[(i - row0) * side + c];
            }
            const uint8_t b = clip8(acc);
            if (b) v[px->n] = b / 255.0f, px->p[px->n++] = (Point){r - h, c - h};
        }
    }
}

/* The footprint of a marker at `at`: the one drawn at the centre when its
 * window and kernels are whole (the image's edge changes nothing), else the
 * one drawn there (on first use). NULL when out of memory. */
static const Footprint *marker_at(PathfinderWork *w, Kit *k, Point at) {
    const int h = w->marker_half, p = at.y * w->W + at.x;
    if (at.y - h >= w->full.clean_lo && at.y + h <= w->full.clean_hi && at.x - h >= w->full.clean_lo &&
        at.x + h <= w->full.clean_hi)
        return &k->marker;
    if (k->edge[p]) return k->edge[p];
    const size_t side = (size_t)(2 * h + 1);
    Footprint *f = calloc(1, sizeof *f);
    Points px = {0, malloc(side * side * sizeof(Point))};
    float *v = malloc(side * side * sizeof *v);
    if (f && px.p && v) {
        marker_pixels(w, at, &px, v);
        if (!footprint_build(f, px, v, w->core_level, w->halo_level, &k->reach, k->reach2, NULL)) return k->edge[p] = f;
        footprint_free(f);
        px.p = NULL, v = NULL;
    }
    free(f), free(px.p), free(v);
    w->out_of_memory = true;
    return NULL;
}

static void canvas_clear(PathfinderWork *w) {
    const size_t N = (size_t)w->W * (size_t)w->W;
    memset(w->image, 0, N * sizeof *w->image);
    memcpy(w->mask, w->empty_mask, N * sizeof *w->mask);
    memset(w->owner, 0xff, N * sizeof *w->owner); /* -1 */
    for (int i = 0; i < w->n_snakes; i++) w->parent[i] = (int16_t)i;
}

/* Starts recording changes, for canvas_undo to take back (a failed snake:
 * the original works on copies of the image and mask and drops them). */
static void canvas_mark(PathfinderWork *w) {
    if (++w->epoch == 0) { /* wrapped: forget every stamp */
        memset(w->stamp, 0, (size_t)w->W * (size_t)w->W * sizeof *w->stamp);
        w->epoch = 1;
    }
    w->n_saved = 0;
    memcpy(w->keep_parent, w->parent, (size_t)w->n_snakes * sizeof *w->parent);
}

/* Pixel p is about to change: keep it as it was, once per mark. */
static void save(PathfinderWork *w, int p) {
    if (w->stamp[p] == w->epoch) return;
    w->stamp[p] = w->epoch;
    w->saved[w->n_saved++] = (Saved){p, w->image[p], w->mask[p], w->owner[p]};
}

static void canvas_undo(PathfinderWork *w) {
    for (int i = 0; i < w->n_saved; i++) {
        const Saved *v = &w->saved[i];
        w->image[v->at] = v->image, w->mask[v->at] = v->mask, w->owner[v->at] = v->owner;
    }
    memcpy(w->parent, w->keep_parent, (size_t)w->n_snakes * sizeof *w->parent);
    canvas_mark(w);
}

/* The image = max(image, the footprint's intensities) at `at`. */
static void paint(PathfinderWork *w, const Footprint *f, Point at) {
    for (int i = 0; i < f->px.n; i++) {
        const Point q = {at.y + f->px.p[i].y, at.x + f->px.p[i].x};
        const int p = q.y * w->W + q.x;
        if (inside(q, w->W) && f->v[i] > w->image[p]) save(w, p), w->image[p] = f->v[i];
    }
}

/* The canvas' mask = max(mask, the paddle's mask) (extend_snake's
 * np.maximum(mask, last_segment_mask)). */
static void add_mask(PathfinderWork *w, const Drawn *d, Point at) {
    for (int i = 0; i < d->spread.n; i++) {
        const Point q = {at.y + d->spread.p[i].y, at.x + d->spread.p[i].x};
        const int p = q.y * w->W + q.x;
        if (inside(q, w->W) && d->spread_v[i] > w->mask[p]) save(w, p), w->mask[p] = d->spread_v[i];
    }
}

/* extend_snake's test: the paddle's mask may not overlap the canvas' (their
 * sum stays below 1.8). */
static bool collides(const PathfinderWork *w, const Drawn *d, Point at) {
    for (int i = 0; i < d->n_solid; i++) { /* the others stay below 0.8 + 1 */
        const Point q = {at.y + d->spread.p[i].y, at.x + d->spread.p[i].x};
        if (inside(q, w->W) && w->mask[q.y * w->W + q.x] + d->spread_v[i] >= 1.8f) return true;
    }
    return false;
}

/* ---- the connectivity rule ---- */

/* The offsets moved to at, those inside the image appended to out; false
 * if some fell outside. */
static bool place_points(const Points *o, Point at, int W, Points *out) {
    bool whole = true;
    for (int i = 0; i < o->n; i++) {
        const Point q = {at.y + o->p[i].y, at.x + o->p[i].x};
        if (inside(q, W))
            out->p[out->n++] = q;
        else
            whole = false;
    }
    return whole;
}

/* Adds the groups of the snakes owning pixels of `near` (at `at`) other
 * than self's; -1 when there are too many to track. */
static int near_groups(PathfinderWork *w, const Points *near, Point at, int self, int *groups, int n) {
    const int W = w->W, me = find(w->parent, self);
    for (int i = 0; i < near->n; i++) {
        const Point q = {at.y + near->p[i].y, at.x + near->p[i].x};
        if (!inside(q, W)) continue;
        const int o = w->owner[q.y * W + q.x];
        if (o < 0 || o == self) continue;
        const int g = find(w->parent, o);
        bool seen = g == me;
        for (int m = 0; m < n && !seen; m++) seen = groups[m] == g;
        if (seen) continue;
        if (n == MAX_NEAR) return -1;
        groups[n++] = g;
    }
    return n;
}

/* Places paddle d at `at` for snake sn if seqlab's rule allows: its surely
 * bright pixels are one group and (unless first) within reach of the
 * previous paddle's; with a marker at `marker` (a target snake's ends) the
 * marker's are one group within reach of the paddle's; and the pixels that
 * may be bright bring no group holding one target together with the other.
 * On success paints the paddle, marks its (and the marker's) maybe-bright
 * pixels and merges the groups; the caller handles the mask. */
static bool place(PathfinderWork *w, Kit *k, Snake *sn, const Drawn *d, Point at, bool first, const Point *marker) {
    const int W = w->W;
    const Footprint *f = &d->fp[sn->kind];
    w->core.n = 0;
    const bool whole = place_points(&f->core, at, W, &w->core);
    if (!(whole ? f->core_connected : connected(&w->core, k->reach2))) return false;
    if (!first && !touch(&w->core, &sn->core, k->reach2)) return false;
    const Footprint *m = marker ? marker_at(w, k, *marker) : NULL;
    if (marker && !m) return false;
    if (m) {
        w->mcore.n = 0;
        const bool mwhole = place_points(&m->core, *marker, W, &w->mcore);
        if (!(mwhole ? m->core_connected : connected(&w->mcore, k->reach2)) || !touch(&w->mcore, &w->core, k->reach2))
            return false;
    }
    int groups[MAX_NEAR];
    int n = near_groups(w, &f->near, at, sn->id, groups, 0);
    if (m && n >= 0) n = near_groups(w, &m->near, *marker, sn->id, groups, n);
    if (n < 0) return false;
    const int a = find(w->parent, 0), b = find(w->parent, 1), me = find(w->parent, sn->id);
    bool has_a = me == a, has_b = me == b;
    for (int i = 0; i < n; i++) has_a |= groups[i] == a, has_b |= groups[i] == b;
    if (has_a && has_b) return false;
    paint(w, f, at);
    for (int i = 0; i < n; i++) w->parent[groups[i]] = (int16_t)me;
    w->halo.n = 0;
    place_points(&f->halo, at, W, &w->halo);
    if (m) place_points(&m->halo, *marker, W, &w->halo);
    for (int i = 0; i < w->halo.n; i++) {
        const int p = w->halo.p[i].y * W + w->halo.p[i].x;
        if (w->owner[p] < 0) save(w, p), w->owner[p] = (int16_t)sn->id;
    }
    memcpy(sn->core.p, w->core.p, (size_t)w->core.n * sizeof *w->core.p);
    sn->core.n = w->core.n;
    return true;
}

/* ---- a snake's first paddle (seed_snake; initialize_two_seeds) ---- */

/* Marks the pixels a seed may not cover: mask > 0.3, or within border of
 * the edge. Returns how many have mask <= 0.3. */
static int mark_occupied(PathfinderWork *w, int border) {
    const int W = w->W;
    int n_free = 0;
    for (int y = 0; y < W; y++)
        for (int x = 0; x < W; x++) {
            const float m = w->mask[y * W + x];
            n_free += m <= 0.3f;
            w->occupied[y * W + x] = m > 0.3f || y < border || y >= W - border || x < border || x >= W - border;
        }
    return n_free;
}

/* Whether p is a free tail for a seed with struct st: none of its offsets
 * lands on an occupied pixel inside the image (cv2.dilate ignores the
 * outside, so edge pixels whose struct points out are free). */
static bool tail_free(const PathfinderWork *w, const Points *st, int p) {
    const int W = w->W, y = p / W, x = p % W;
    for (int j = 0; j < st->n; j++) {
        const int yy = y + st->p[j].y, xx = x + st->p[j].x;
        if (yy >= 0 && yy < W && xx >= 0 && xx < W && w->occupied[yy * W + xx]) return false;
    }
    return true;
}

static int free_tails(const PathfinderWork *w, const Points *st, int *out) {
    int n = 0;
    for (int p = 0; p < w->W * w->W; p++)
        if (tail_free(w, st, p)) out[n++] = p;
    return n;
}

/* A tail drawn uniformly among the free ones (np.nonzero, then randint):
 * a few draws over the whole image kept when free (each kept draw is
 * uniform over the free tails), then the list. -1 when none is free. */
static int pick_tail(PathfinderWork *w, const Points *st, Rng *r) {
    const int N = w->W * w->W;
    for (int t = 0; t < 32; t++) {
        const int p = draw_int(r, N);
        if (tail_free(w, st, p)) return p;
    }
    const int n = free_tails(w, st, w->free_pix);
    return n ? w->free_pix[draw_int(r, n)] : -1;
}

static void snake_start(PathfinderWork *w, const Kit *k, Snake *sn, Point tail, int deg, const Drawn *d) {
    const double theta = radians(deg), L = w->spec.paddle_length;
    sn->tail = sn->head = tail;
    sn->pivot = translate(translate(tail, theta, L), flip(theta), k->step);
    sn->orientation = theta, sn->heading = deg + 180, sn->last = d, sn->last_at = tail, sn->n = 1;
    sn->length = L, sn->end_y = tail.y + L * sin(theta), sn->end_x = tail.x + L * cos(theta);
}

/* A first paddle at a free tail: a whole-degree orientation, a tail drawn
 * among the free tails (occupied: mask > 0.3, or within `border` of the
 * edge), its head and pivot inside the image. Fails when under `stop` of the
 * image is free or no tail fits; retries max_paddle_retrial times when the
 * head or pivot falls out (or, seqlab's rule, the paddle would break it).
 * `target`: the first target snake, on an empty canvas (its free tails
 * depend on the degree only and are cached) and with a marker. */
static bool seed_snake(PathfinderWork *w, Kit *k, Rng *r, Snake *sn, int border, float stop, bool target) {
    const PathfinderSpec *s = &w->spec;
    const int W = w->W;
    if (!target && (float)mark_occupied(w, border) / (float)(W * W) < stop) return false;
    for (int trial = 0; trial <= s->max_paddle_retrial; trial++) {
        const int deg = draw_int(r, 360) - 180;
        Point tail;
        if (target) {
            const Points *f = &k->fresh[deg + 180];
            if (f->n == 0) return false;
            tail = f->p[draw_int(r, f->n)];
        } else {
            const int p = pick_tail(w, &k->structs[deg + 180], r);
            if (p < 0) return false;
            tail = (Point){p / W, p % W};
        }
        const Point head = translate(tail, radians(deg), s->paddle_length);
        if (!inside(head, W) || !inside(translate(head, flip(radians(deg)), k->step), W)) continue;
        const Drawn *d = &k->by_degree[deg + 180];
        if (!place(w, k, sn, d, tail, true, target ? &tail : NULL)) continue;
        snake_start(w, k, sn, tail, deg, d);
        return true;
    }
    return false;
}

/* initialize_two_seeds' second tail: seed_distance from the first at a
 * whole-degree angle, no mask test; only its head and pivot must fall
 * inside, and (seqlab) the tail itself, which the original does not check:
 * its marker could fall off the image. And seqlab's rule must hold. */
static bool seed_second(PathfinderWork *w, Kit *k, Rng *r, Snake *sn, Point first) {
    const PathfinderSpec *s = &w->spec;
    for (int trial = 0; trial <= s->max_paddle_retrial; trial++) {
        const int deg = draw_int(r, 360) - 180;
        const double a = radians(draw_int(r, 360));
        const Point tail = {(int)rint(first.y + s->seed_distance * sin(a)),
                            (int)rint(first.x + s->seed_distance * cos(a))};
        const Point head = translate(tail, radians(deg), s->paddle_length);
        if (!inside(tail, w->W) || !inside(head, w->W) || !inside(translate(head, flip(radians(deg)), k->step), w->W))
            continue;
        const Drawn *d = &k->by_degree[deg + 180];
        if (!place(w, k, sn, d, tail, true, &tail)) continue;
        snake_start(w, k, sn, tail, deg, d);
        return true;
    }
    return false;
}

/* ---- the next paddle (extend_snake, get_coords_cmf) ---- */

/* The next pivot is step + margin beyond the last along its orientation;
 * the new head is drawn among the pixels on the circle of radius step
 * around it (Kit.steps, inside the image), each weighted by
 * cos²(min(turn * continuity, 90°)) times one minus the mask dilated by the
 * margin; the paddle runs from the head back toward the pivot. Up to
 * max_paddle_retrial + 1 draws from that distribution; a draw whose mask
 * collides (or that breaks seqlab's rule) is redrawn, and the snake fails
 * when all do. `marked`: the paddle ends a target snake and brings its
 * marker. */
static bool extend_snake(PathfinderWork *w, Kit *k, Rng *r, Snake *sn, bool marked) {
    const PathfinderSpec *s = &w->spec;
    const int W = w->W;
    const Point pivot = translate_sc(sn->pivot, k->sin_h[sn->heading], k->cos_h[sn->heading], k->step + k->margin);
    const Step *cand[MAX_STEPS];
    double cmf[MAX_STEPS], total = 0;
    int n = 0;
    for (int i = 0; i < k->n_steps; i++) {
        const Step *st = &k->steps[i];
        const int y = pivot.y + st->dy, x = pivot.x + st->dx;
        if (y < 0 || y >= W || x < 0 || x >= W) continue;
        float dil = 0; /* the mask dilated by the margin, at the candidate */
        for (int j = 0; j < k->disk.n; j++) {
            const int yy = y + k->disk.p[j].y, xx = x + k->disk.p[j].x;
            if (yy >= 0 && yy < W && xx >= 0 && xx < W) dil = maxf(dil, w->mask[yy * W + xx]);
        }
        cand[n] = st;
        total += cmf[n++] = (1 - dil) * k->turn[(size_t)sn->heading * (size_t)k->n_steps + (size_t)i];
    }
    if (n == 0 || total < 1e-4) return false;
    double acc = 0;
    for (int i = 0; i < n; i++) cmf[i] = acc += cmf[i] / total;
    for (int trial = 0; trial <= s->max_paddle_retrial; trial++) {
        const double u = rng_uniform(r);
        int i = 0;
        while (i < n && !(cmf[i] > u)) i++;
        const Step *st = cand[i == n ? 0 : i]; /* np.argmax of all false: the first */
        const Point head = {pivot.y + st->dy, pivot.x + st->dx};
        if (collides(w, &st->d, head) || !place(w, k, sn, &st->d, head, false, marked ? &head : NULL)) continue;
        add_mask(w, sn->last, sn->last_at);
        const int h = 360 + (int)(st - k->steps);
        const double L = s->paddle_length, near_y = head.y - L * k->sin_h[h], near_x = head.x - L * k->cos_h[h];
        sn->length += hypot(near_y - sn->end_y, near_x - sn->end_x) + L;
        sn->end_y = head.y, sn->end_x = head.x;
        sn->last = &st->d, sn->last_at = head, sn->pivot = pivot, sn->orientation = st->orientation, sn->head = head;
        sn->heading = h, sn->n++;
        return true;
    }
    return false;
}

/* ---- the image (two_snakes, make_many_snakes, from_wrapper) ---- */

/* two_snakes: the first tail at least 2 seed_distance from the edges, the
 * second seed_distance from it, then both grown a paddle each in turn; any
 * failure fails the pair. Both last paddles' masks join the mask (the
 * original adds only the second's, leaving the first's last paddle open to
 * distractors). */
static bool two_snakes(PathfinderWork *w, Kit *k, Rng *r) {
    const PathfinderSpec *s = &w->spec;
    for (int i = 0; i < 2; i++) w->snakes[i].id = i, w->snakes[i].kind = 0, w->snakes[i].core.n = 0;
    if (!seed_snake(w, k, r, &w->snakes[0], 2 * s->seed_distance, 0, true)) return false;
    if (!seed_second(w, k, r, &w->snakes[1], w->snakes[0].tail)) return false;
    for (int p = 1; p < s->contour_length; p++)
        for (int i = 0; i < 2; i++)
            if (!extend_snake(w, k, r, &w->snakes[i], p == s->contour_length - 1)) return false;
    for (int i = 0; i < 2; i++) add_mask(w, w->snakes[i].last, w->snakes[i].last_at);
    return true;
}

/* make_snake: a first paddle (none once under stop_availability of the
 * image is free), distractor_length - 1 more; false leaves the canvas as it
 * was. */
static bool distractor(PathfinderWork *w, Kit *k, Rng *r, int id) {
    const PathfinderSpec *s = &w->spec;
    Snake *sn = &w->distractor;
    sn->id = id, sn->kind = 1, sn->core.n = 0;
    canvas_mark(w);
    bool ok = seed_snake(w, k, r, sn, 1, s->stop_availability, false);
    for (int p = 1; ok && p < s->distractor_length; p++) ok = extend_snake(w, k, r, sn, false);
    if (ok) {
        add_mask(w, sn->last, sn->last_at);
        return true;
    }
    canvas_undo(w);
    return false;
}

/* scipy.misc.imsave's bytescale: the image's range to 0..255. False when
 * its brightest pixel is fainter than the rule assumed (not seen: a marker
 * is always there). */
static bool to_bytes(const PathfinderWork *w, uint8_t *pixels) {
    const size_t N = (size_t)w->W * (size_t)w->W;
    float lo = w->image[0], hi = w->image[0];
    for (size_t i = 1; i < N; i++) lo = w->image[i] < lo ? w->image[i] : lo, hi = maxf(hi, w->image[i]);
    if (lo != 0 || hi < w->max_low) return false;
    const double scale = 255.0 / hi;
    for (size_t i = 0; i < N; i++) pixels[i] = (uint8_t)fmin(255, floor(w->image[i] * scale + 0.5));
    return true;
}

int pathfinder_draw(PathfinderWork *w, Rng *r, int label, uint8_t *pixels, PathfinderImage *out, Error *err) {
    const PathfinderSpec *s = &w->spec;
    if (label < 0) label = draw_int(r, 2);
    memset(out, 0, sizeof *out);
    out->label = label;
    for (;;) {
        Kit *k = &w->kits[s->n_margins > 1 ? draw_int(r, s->n_margins) : 0];
        int tries = 0;
        canvas_clear(w);
        canvas_mark(w);
        while (!two_snakes(w, k, r)) {
            if (++tries >= MAX_TARGET_TRIES)
                return err_set(err, "pathfinder: no room for two snakes of %d paddles in %dx%d pixels after %d tries",
                               s->contour_length, w->W, w->W, MAX_TARGET_TRIES);
            canvas_undo(w);
        }
        tries++;
        out->attempts += tries, out->margin = k->margin, out->n_distractors = 0;
        for (int i = 0; i < s->n_distractors; i++)
            for (int t = 0; t <= s->max_distractor_retrial; t++)
                if (distractor(w, k, r, 2 + i)) {
                    out->n_distractors++;
                    break;
                }
        /* the markers: one end of one target, and the far end of the same (1) or the other (0) */
        const int first = draw_int(r, 2), second = label ? first : 1 - first;
        const Point at[2] = {w->snakes[first].tail, w->snakes[second].head};
        for (int i = 0; i < 2; i++) {
            const Footprint *m = marker_at(w, k, at[i]);
            if (!m) break;
            paint(w, m, at[i]);
            out->marker[i][0] = at[i].y, out->marker[i][1] = at[i].x;
        }
        if (w->out_of_memory) return err_set(err, "pathfinder: out of memory drawing a marker");
        if (!to_bytes(w, pixels)) continue;
        for (int i = 0; i < 2; i++) out->target_paddles[i] = w->snakes[i].n, out->path_length[i] = w->snakes[i].length;
        out->n_paddles = 2 * s->contour_length + out->n_distractors * s->distractor_length;
        return 0;
    }
}

/* ---- the spec ---- */

PathfinderSpec pathfinder_defaults(int size, int contour_length) {
    const bool x = size >= 128; /* Path-X; otherwise Pathfinder-32's parameters */
    const int distractor_length = contour_length / 3 > 0 ? contour_length / 3 : 1;
    PathfinderSpec s = {.size = size,
                        .contour_length = contour_length,
                        .distractor_length = distractor_length,
                        .n_distractors = (x ? 35 : 20) / distractor_length,
                        .paddle_length = x ? 5 : 2,
                        .paddle_thickness = x ? 1.5f : 0.5f,
                        .margins = {x ? 2 : 1, 3},
                        .n_margins = x ? 2 : 1,
                        .paddle_contrast = x ? 1.0f : 0.75f,
                        .snake_contrast = x ? 0.9f : 2.0f,
                        .continuity = x ? 1.8f : 1.0f,
                        .padding = 1,
                        .seed_distance = x ? 20 : 7,
                        .marker_radius = x ? 3.0f : 1.5f,
                        .antialias = 2,
                        .max_paddle_retrial = 2,
                        .max_distractor_retrial = 4,
                        .stop_availability = 0.01f,
                        .bright = 32,
                        .n_images = 200000,
                        .per_batch = 1000,
                        .seed = 0};
    return s;
}

void pathfinder_difficulty(int contour_length, char *out, size_t n) {
    if (contour_length == 6)
        snprintf(out, n, "curv_baseline");
    else
        snprintf(out, n, "curv_contour_length_%d", contour_length);
}

int pathfinder_reach2(int margin) { return (2 * margin + 1) * (2 * margin + 1) + 4; }

int pathfinder_check(const PathfinderSpec *s, Error *err) {
    const float pen = s->paddle_thickness * (float)s->antialias;
    if (s->size < 16 || s->size > 1024) return err_set(err, "pathfinder: size must be in 16..1024, got %d", s->size);
    if (s->contour_length < 2 || s->contour_length > 64)
        return err_set(err, "pathfinder: contour_length must be in 2..64, got %d", s->contour_length);
    if (s->distractor_length < 1 || s->distractor_length > 64 || s->n_distractors < 0 || s->n_distractors > 1000)
        return err_set(err, "pathfinder: distractor_length must be in 1..64 and n_distractors in 0..1000");
    if (s->paddle_length < 1 || s->paddle_length > 16 || s->antialias < 1 || s->antialias > 8)
        return err_set(err, "pathfinder: paddle_length must be in 1..16 and antialias in 1..8");
    if (!(s->paddle_thickness > 0 && s->paddle_thickness <= 4) || pen != roundf(pen))
        return err_set(err,
                       "pathfinder: paddle_thickness * antialias must be a whole number of pixels (the original's "
                       "rule), got %g * %d",
                       s->paddle_thickness, s->antialias);
    if (s->n_margins < 1 || s->n_margins > PATHFINDER_MAX_MARGINS)
        return err_set(err, "pathfinder: give 1..%d margins", PATHFINDER_MAX_MARGINS);
    for (int i = 0; i < s->n_margins; i++)
        if (s->margins[i] < 0 || s->margins[i] > 8) return err_set(err, "pathfinder: margins must be in 0..8");
    if (!(s->continuity > 0) || !(s->marker_radius > 0 && s->marker_radius <= 16) || s->seed_distance < 1 ||
        s->padding < 0 || s->max_paddle_retrial < 0 || s->max_distractor_retrial < 0 || s->bright < 1 ||
        s->bright > 255)
        return err_set(err, "pathfinder: continuity and marker_radius must be > 0, seed_distance >= 1, padding and "
                            "retrials >= 0, bright in 1..255");
    if (!(s->paddle_contrast > 0) || !(s->snake_contrast > 0))
        return err_set(err, "pathfinder: paddle_contrast and snake_contrast must be > 0");
    if (4 * s->seed_distance >= s->size)
        return err_set(err,
                       "pathfinder: the first snake starts 2 * seed_distance (%d) from every edge: size %d is "
                       "too small",
                       2 * s->seed_distance, s->size);
    if (s->per_batch < 1) return err_set(err, "pathfinder: per_batch must be >= 1");
    return 0;
}

/* ---- the work space ---- */

void pathfinder_work_free(PathfinderWork *w) {
    if (!w) return;
    for (int i = 0; i < PATHFINDER_MAX_MARGINS; i++) kit_free(&w->kits[i]);
    lanczos_free(&w->full);
    free(w->image), free(w->mask), free(w->empty_mask), free(w->owner), free(w->parent);
    free(w->saved), free(w->stamp), free(w->keep_parent);
    free(w->occupied), free(w->free_pix), free(w->marker_tmp);
    free(w->core.p), free(w->mcore.p), free(w->halo.p);
    free(w->snakes[0].core.p), free(w->snakes[1].core.p), free(w->distractor.core.p);
    free(w);
}

/* The buffers, sized from the spec. */
static int work_alloc(PathfinderWork *w, int S_max, Error *err) {
    const PathfinderSpec *s = &w->spec;
    const size_t N = (size_t)w->W * (size_t)w->W, side = (size_t)(2 * w->marker_half + 1);
    const size_t cap = (size_t)S_max * (size_t)S_max > side * side ? (size_t)S_max * (size_t)S_max : side * side;
    const size_t aa_rows = (size_t)(2 * s->marker_radius * (float)s->antialias) + 3;
    int reach_n = 0;
    for (int i = 0; i < s->n_margins; i++) reach_n = w->kits[i].reach.n > reach_n ? w->kits[i].reach.n : reach_n;
    w->image = xmalloc(N * sizeof *w->image, err), w->mask = xmalloc(N * sizeof *w->mask, err);
    w->empty_mask = xmalloc(N * sizeof *w->mask, err), w->owner = xmalloc(N * sizeof *w->owner, err);
    w->parent = xmalloc((size_t)w->n_snakes * sizeof *w->parent, err);
    w->saved = xmalloc(N * sizeof *w->saved, err), w->stamp = xcalloc(N, sizeof *w->stamp, err);
    w->keep_parent = xmalloc((size_t)w->n_snakes * sizeof *w->parent, err);
    w->occupied = xmalloc(N, err);
    w->free_pix = xmalloc(N * sizeof *w->free_pix, err);
    w->marker_tmp = xmalloc(aa_rows * side * sizeof *w->marker_tmp, err);
    w->core.p = xmalloc(cap * sizeof(Point), err), w->mcore.p = xmalloc(cap * sizeof(Point), err);
    w->halo.p = xmalloc(2 * cap * sizeof(Point), err);
    for (int i = 0; i < 2; i++) w->snakes[i].core.p = xmalloc(cap * sizeof(Point), err);
    w->distractor.core.p = xmalloc(cap * sizeof(Point), err);
    return w->image && w->mask && w->empty_mask && w->owner && w->parent && w->saved && w->stamp && w->keep_parent &&
                   w->occupied && w->free_pix && w->marker_tmp && w->core.p && w->mcore.p && w->halo.p &&
                   w->snakes[0].core.p && w->snakes[1].core.p && w->distractor.core.p
               ? 0
               : -1;
}

/* The levels of the connectivity rule. A pixel's byte is round(v * 255 /
 * brightest); the brightest pixel lies between a marker's peak (1) and the
 * brightest paddle (peak * contrast), so v below halo_level is surely dark
 * and v at or above core_level surely bright. Then every paddle's and the
 * marker's footprints. */
static int work_levels(PathfinderWork *w, Error *err) {
    const PathfinderSpec *s = &w->spec;
    float peak = 0;
    for (int i = 0; i < s->n_margins; i++) peak = maxf(peak, w->kits[i].peak);
    const float contrast[2] = {s->paddle_contrast * s->snake_contrast, s->snake_contrast};
    const float max_high = maxf(1.0f, peak * maxf(contrast[0], contrast[1]));
    w->max_low = 1.0f;
    w->halo_level = (s->bright - 0.5f) / 255.0f * w->max_low * (1 - 1e-4f);
    w->core_level = (s->bright - 0.5f) / 255.0f * max_high * (1 + 1e-4f);
    for (int i = 0; i < s->n_margins; i++) {
        Kit *k = &w->kits[i];
        for (int deg = 0; deg < 360; deg++)
            if (drawn_footprints(&k->by_degree[deg], k, contrast, w->core_level, w->halo_level, err)) return -1;
        for (int j = 0; j < k->n_steps; j++)
            if (drawn_footprints(&k->steps[j].d, k, contrast, w->core_level, w->halo_level, err)) return -1;
    }
    const int side = 2 * w->marker_half + 1;
    for (int i = 0; i < s->n_margins; i++) {
        Kit *k = &w->kits[i];
        Points px = {0, xmalloc((size_t)side * (size_t)side * sizeof(Point), err)};
        float *v = xmalloc((size_t)side * (size_t)side * sizeof *v, err);
        if (!px.p || !v) return free(px.p), free(v), -1;
        marker_pixels(w, (Point){w->W / 2, w->W / 2}, &px, v);
        if (footprint_build(&k->marker, px, v, w->core_level, w->halo_level, &k->reach, k->reach2, err)) return -1;
        float top = 0;
        for (int j = 0; j < k->marker.px.n; j++) top = maxf(top, k->marker.v[j]);
        if (top < w->max_low)
            return err_set(err, "pathfinder: a marker of radius %g peaks at %g, below 1", s->marker_radius, top);
    }
    return 0;
}

int pathfinder_work_build(PathfinderWork **out, const PathfinderSpec *s, Error *err) {
    *out = NULL;
    if (pathfinder_check(s, err)) return -1;
    PathfinderWork *w = xcalloc(1, sizeof *w, err);
    if (!w) return -1;
    w->spec = *s, w->W = s->size, w->n_snakes = 2 + s->n_distractors;
    w->marker_half = (int)ceil(s->marker_radius) + 4; /* the disk, the filter's 3 pixels, a quarter-pixel shift */
    int rc = lanczos_build(&w->full, w->W * s->antialias, w->W, err), S_max = 0;
    for (int i = 0; !rc && i < s->n_margins; i++) {
        rc = kit_build(&w->kits[i], s, s->margins[i], err);
        S_max = w->kits[i].S > S_max ? w->kits[i].S : S_max;
    }
    if (rc || work_alloc(w, S_max, err) || work_levels(w, err)) {
        pathfinder_work_free(w);
        return -1;
    }
    const int W = w->W, pad = s->padding;
    for (int y = 0; y < W; y++)
        for (int x = 0; x < W; x++)
            w->empty_mask[y * W + x] = y < pad || y >= W - pad || x < pad || x >= W - pad ? 1.0f : 0.0f;
    canvas_clear(w); /* the first target's free tails on an empty canvas, by degree */
    mark_occupied(w, 2 * s->seed_distance);
    for (int i = 0; i < s->n_margins; i++)
        for (int deg = 0; deg < 360; deg++) {
            Kit *k = &w->kits[i];
            const int n = free_tails(w, &k->structs[deg], w->free_pix);
            if (!(k->fresh[deg].p = xmalloc(((size_t)n + 1) * sizeof(Point), err))) {
                pathfinder_work_free(w);
                return -1;
            }
            for (int j = 0; j < n; j++) k->fresh[deg].p[j] = (Point){w->free_pix[j] / W, w->free_pix[j] % W};
            k->fresh[deg].n = n;
        }
    *out = w;
    return 0;
}

/* ---- the release's files ---- */

Rng pathfinder_rng(const PathfinderSpec *s, size_t index) {
    return rng_make(s->seed, rng_stream(RNG_DATA, 0x50464e, index));
}

/* Python's str() of a float parameter in the metadata ("1.0", "0.5"). */
static void py_float(char *out, size_t n, double v) {
    snprintf(out, n, "%g", v);
    if (!strpbrk(out, ".e")) snprintf(out + strlen(out), n - strlen(out), ".0");
}

/* One batch's images and metadata: labels half 1 (an odd count's extra one
 * drawn), shuffled; image i drawn from its own stream. */
static int write_batch(PathfinderWork *w, const char *root, size_t b, uint8_t *pixels, int *labels, Error *err) {
    const PathfinderSpec *s = &w->spec;
    const size_t from = b * s->per_batch, count = s->n_images - from < s->per_batch ? s->n_images - from : s->per_batch;
    Rng lr = rng_make(s->seed, rng_stream(RNG_DATA, 0x50464c, b));
    for (size_t i = 0; i < count; i++) labels[i] = i < count / 2;
    if (count % 2) labels[count - 1] = draw_int(&lr, 2);
    for (size_t i = count; i > 1; i--) {
        const size_t j = (size_t)(((uint64_t)rng_next(&lr) * i) >> 32);
        const int t = labels[i - 1];
        labels[i - 1] = labels[j], labels[j] = t;
    }
    char dir[4200], path[4400], meta[4400], tmp[4500], cont[32], thick[32];
    snprintf(dir, sizeof dir, "%s/imgs/%zu", root, b);
    snprintf(meta, sizeof meta, "%s/metadata/%zu.npy", root, b);
    snprintf(tmp, sizeof tmp, "%s.tmp", meta);
    py_float(cont, sizeof cont, s->continuity), py_float(thick, sizeof thick, s->paddle_thickness);
    if (file_make_dirs(dir, err)) return -1;
    FILE *f = fopen(tmp, "w");
    if (!f) return err_errno(err, "cannot write '%s'", tmp);
    int rc = 0;
    for (size_t i = 0; i < count && !rc; i++) {
        Rng r = pathfinder_rng(s, from + i);
        PathfinderImage im;
        snprintf(path, sizeof path, "%s/sample_%zu.png", dir, i);
        rc = pathfinder_draw(w, &r, labels[i], pixels, &im, err) ||
             png_write_gray(path, pixels, (size_t)w->W, (size_t)w->W, err);
        if (!rc) /* the original's fields: folder, file, index, label, continuity, contour and
                    distractor length, paddle length, thickness, margin, contrasts */
            fprintf(f, "imgs/%zu sample_%zu.png %zu %d %s %d %d %d %s %d 1\n", b, i, i, labels[i], cont,
                    s->contour_length, s->distractor_length, s->paddle_length, thick, im.margin);
    }
    const bool bad_write = ferror(f) != 0;
    if (fclose(f) != 0 || bad_write) rc = rc ? rc : err_errno(err, "cannot write '%s'", tmp);
    if (!rc && rename(tmp, meta) != 0) rc = err_errno(err, "cannot rename '%s' to '%s'", tmp, meta);
    if (rc) remove(tmp);
    return rc ? -1 : 0;
}

int pathfinder_write(const PathfinderSpec *s, const char *dir, Error *err) {
    PathfinderWork *w;
    if (pathfinder_work_build(&w, s, err)) return -1;
    char name[64], root[4096], sub[4200];
    pathfinder_difficulty(s->contour_length, name, sizeof name);
    snprintf(root, sizeof root, "%s/%s", dir, name);
    snprintf(sub, sizeof sub, "%s/metadata", root);
    int rc = file_make_dirs(sub, err);
    uint8_t *pixels = rc ? NULL : xmalloc((size_t)s->size * (size_t)s->size, err);
    const size_t most = s->per_batch < s->n_images ? s->per_batch : s->n_images; /* labels of one batch */
    int *labels = rc ? NULL : xmalloc((most ? most : 1) * sizeof *labels, err);
    rc = rc || !pixels || !labels;
    for (size_t b = 0; !rc && b * s->per_batch < s->n_images; b++) rc = write_batch(w, root, b, pixels, labels, err);
    free(pixels), free(labels);
    pathfinder_work_free(w);
    return rc ? -1 : 0;
}
