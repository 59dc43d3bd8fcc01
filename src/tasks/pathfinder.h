/* pathfinder.h — the Long Range Arena's Pathfinder and Path-X images (spec
 * tasks-synthetic-lra.md §c.5), drawn the way Linsley et al.'s generator
 * (drewlinsley/pathfinder snakes2.py with snakes.py; the LRA's parameters in
 * lra_benchmarks/data/pathfinder.py) draws them, seeded, so seqlab makes the
 * data set itself.
 *
 * An image is W x W gray pixels holding "snakes": chains of short straight
 * paddles with a gap (the margin) between them. Two target snakes of
 * contour_length paddles start seed_distance pixels apart and grow one
 * paddle each in turn; each new paddle turns from the last by an angle drawn
 * with weight cos²(min(turn * continuity, 90°)) among the free spots, and
 * may not come closer to the paddles already drawn than the margin (the
 * original's occupancy mask). Then up to n_distractors distractor snakes of
 * distractor_length paddles, then two circles (markers): label 1 puts them
 * on the two ends of one target snake, label 0 on one end of each. Paddles
 * are drawn `antialias` times larger and reduced with PIL's Lanczos filter,
 * as the original does through scipy.misc.imresize, and the image is scaled
 * so its brightest pixel is 255 (scipy.misc.imsave).
 *
 * The files are the release's: <dir>/<difficulty>/imgs/<batch>/sample_<i>.png
 * and <dir>/<difficulty>/metadata/<batch>.npy, text lines (not NumPy) of
 * "imgs/<batch> sample_<i>.png <i> <label>" then the original's parameter
 * fields; the LRA and S4/S5 readers take field 0, 1 and 3.
 *
 *     PathfinderSpec s = pathfinder_defaults(32, 14);   // curv_contour_length_14
 *     s.n_images = 200000, s.seed = 1;
 *     pathfinder_write(&s, "data/pathfinder32", &err);
 *
 * What differs from the original, and why (docs/data.md): every image obeys
 * a connectivity rule a flood fill can check (pathfinder_reach2): the bright
 * pixels of a target snake and its markers form one group, and no chain of
 * bright pixels joins the two target snakes. The original does not promise
 * this: its two targets may pass as close as a snake's own paddles lie, and
 * a distractor may touch both.
 */
#ifndef SEQLAB_PATHFINDER_H
#define SEQLAB_PATHFINDER_H

#include <stddef.h>
#include <stdint.h>

#include "../core/error.h"
#include "../core/rng.h"

enum { PATHFINDER_MAX_MARGINS = 4 };

typedef struct {
    int size;                            /* W, the image's side: 32 (Pathfinder) or 128 (Path-X) */
    int contour_length;                  /* paddles in each target snake: 6 (curv_baseline), 9, 14 */
    int distractor_length;               /* paddles in each distractor snake: contour_length div 3 */
    int n_distractors;                   /* distractor snakes tried for: 20 (32 px) or 35 (128 px) div their length */
    int paddle_length;                   /* pixels */
    float paddle_thickness;              /* pixels; paddle_thickness * antialias must be whole */
    int margins[PATHFINDER_MAX_MARGINS]; /* the gap around a paddle, */
    int n_margins;                       /* one of these drawn per image */
    float paddle_contrast;               /* target paddles' intensity is paddle_contrast * snake_contrast */
    float snake_contrast;                /* distractor paddles' intensity */
    float continuity;                    /* a turn t weighs cos²(min(t * continuity, 90°)) */
    int padding;                         /* border rows and columns kept free */
    int seed_distance;                   /* pixels between the two target snakes' first tails */
    float marker_radius;                 /* pixels */
    int antialias;                       /* drawing scale before the Lanczos reduction */
    int max_paddle_retrial;              /* extra tries for one paddle */
    int max_distractor_retrial;          /* extra tries for one distractor snake */
    float stop_availability;             /* no distractor starts once under this fraction of pixels is free */
    int bright;                          /* the connectivity rule's threshold: a pixel >= bright (32) is bright */
    size_t n_images;                     /* images written by pathfinder_write */
    size_t per_batch;                    /* images per imgs/<batch> folder and metadata file */
    uint64_t seed;
} PathfinderSpec;

/* The LRA's parameters for size 32 or 128 and contour length 6, 9 or 14
 * (other lengths: the same rule), 200,000 images in batches of 1,000. */
PathfinderSpec pathfinder_defaults(int size, int contour_length);
/* The release's folder name: curv_baseline (6), curv_contour_length_<n>. */
void pathfinder_difficulty(int contour_length, char *out, size_t n);
/* Checks the spec's values; -1 with a message naming the bad field. */
int pathfinder_check(const PathfinderSpec *s, Error *err);

/* The connectivity rule every image obeys, for a flood fill to check. Two
 * bright pixels (>= spec.bright) are neighbours when their squared distance
 * is at most pathfinder_reach2(margin) = (2 margin + 1)² + 4: the gap
 * between a snake's paddles (two margins) and the rounding of their places;
 * 13 for margin 1, 29 for 2, 53 for 3. Then label 1 <=> the two markers'
 * centres lie in one group of neighbours. The generator redraws the rare
 * paddle further than that from the one before (0.1% of the possible turns
 * at margin 1, 0.4% at 3) and any paddle that would bring the two target
 * snakes' groups together. */
int pathfinder_reach2(int margin);

/* What one drawn image holds, for tests and statistics. */
typedef struct {
    int label;             /* 1: the markers sit at the two ends of one snake */
    int marker[2][2];      /* (row, column) of the two markers' centres */
    int margin;            /* the margin drawn for this image */
    int n_distractors;     /* distractor snakes drawn (some may not fit) */
    int n_paddles;         /* paddles drawn, targets and distractors */
    int target_paddles[2]; /* paddles of each target snake: contour_length */
    double path_length[2]; /* each target snake's length in pixels, tail to head through its paddles */
    int attempts;          /* tries at the pair of target snakes */
} PathfinderImage;

/* The generator's buffers and its cache of drawn paddles; one per thread. */
typedef struct PathfinderWork PathfinderWork;
int pathfinder_work_build(PathfinderWork **w, const PathfinderSpec *s, Error *err);
void pathfinder_work_free(PathfinderWork *w); /* accepts NULL */

/* Draws one image (size * size bytes into pixels) with the given label (0
 * or 1; -1 draws it from r, as the original does) using r's numbers only.
 * Returns 0, or -1 if the target snakes found no room in a million tries (a
 * spec whose snakes cannot fit) or memory ran out. */
int pathfinder_draw(PathfinderWork *w, Rng *r, int label, uint8_t *pixels, PathfinderImage *out, Error *err);

/* The numbers image `index` of a data set is drawn from (seed, index). */
Rng pathfinder_rng(const PathfinderSpec *s, size_t index);

/* Writes s->n_images images and their metadata under
 * <dir>/<difficulty>/ (folders made as needed): batch b holds images
 * b * per_batch onwards, half of each batch positive (shuffled); image i is
 * drawn from pathfinder_rng(s, i) with its label. A batch's metadata file appears (renamed
 * from .tmp) only after its images are written. */
int pathfinder_write(const PathfinderSpec *s, const char *dir, Error *err);

#endif
