/* png.h — 8-bit grayscale PNG files through libpng: the Pathfinder images
 * (tasks/pathfinder.h writes them, tasks/lra.c reads them).
 *
 * Reading converts whatever the file holds to one 8-bit gray channel with
 * libpng's own transforms: palette entries expanded, 1/2/4-bit gray widened,
 * 16-bit samples scaled to 8 bits, alpha dropped, and colour mixed to gray
 * with 0.299 R + 0.587 G + 0.114 B (what PIL's convert("L"), used by the
 * S4/S5 Pathfinder loaders, computes). The caller says the size it expects;
 * a file of another size is an error, as are a missing file, a file that is
 * not a PNG and a truncated or corrupt one; each message names the file.
 *
 *     uint8_t px[32 * 32];
 *     if (png_read_gray("imgs/0/sample_0.png", px, 32, 32, &err)) ...
 */
#ifndef SEQLAB_PNG_H
#define SEQLAB_PNG_H

#include <stddef.h>
#include <stdint.h>

#include "../core/error.h"

/* Reads the image at path into pixels (width * height bytes, row-major).
 * Returns 0, or -1 with a message naming the file; pixels may then hold
 * part of the image. */
int png_read_gray(const char *path, uint8_t *pixels, size_t width, size_t height, Error *err);

/* Writes pixels (width * height bytes, row-major) as an 8-bit grayscale PNG
 * at path, replacing any file there. Returns 0, or -1 with a message naming
 * the file (a partly written file may remain). */
int png_write_gray(const char *path, const uint8_t *pixels, size_t width, size_t height, Error *err);

#endif
