/* png.c — see png.h. libpng reports failures by calling an error function
 * that must not return; ours keeps libpng's message and longjmps back to the
 * setjmp in the reader or writer, which turns it into an Error. */
#include "png.h"

#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct {
    char msg[256]; /* libpng's last error message */
} PngProblem;

static void on_error(png_structp png, png_const_charp msg) {
    PngProblem *p = png_get_error_ptr(png);
    snprintf(p->msg, sizeof p->msg, "%s", msg);
    png_longjmp(png, 1);
}

static void on_warning(png_structp png, png_const_charp msg) {
    (void)png, (void)msg; /* warnings (e.g. an unknown chunk) do not stop the read */
}

/* Asks libpng to hand back one 8-bit gray byte per pixel whatever the file
 * holds (png.h lists the conversions). */
static void want_gray8(png_structp png, png_infop info) {
    const int color = png_get_color_type(png, info), depth = png_get_bit_depth(png, info);
    if (color == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (color == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (depth == 16) png_set_scale_16(png);
    if ((color & PNG_COLOR_MASK_ALPHA) || png_get_valid(png, info, PNG_INFO_tRNS)) png_set_strip_alpha(png);
    if (color & PNG_COLOR_MASK_COLOR) png_set_rgb_to_gray_fixed(png, PNG_ERROR_ACTION_NONE, 29900, 58700);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
}

int png_read_gray(const char *path, uint8_t *pixels, size_t width, size_t height, Error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return err_errno(err, "cannot read the PNG '%s'", path);
    unsigned char sig[8];
    if (fread(sig, 1, sizeof sig, f) != sizeof sig || png_sig_cmp(sig, 0, sizeof sig)) {
        fclose(f);
        return err_set(err, "'%s' is not a PNG file (it does not start with the PNG signature)", path);
    }
    PngProblem problem = {{0}};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &problem, on_error, on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        png_destroy_read_struct(&png, NULL, NULL);
        fclose(f);
        return err_set(err, "out of memory reading the PNG '%s'", path);
    }
    png_bytep *volatile rows = NULL; /* volatile: assigned after setjmp, freed after longjmp */
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &info, NULL);
        free(rows);
        fclose(f);
        return err_set(err, "'%s': truncated or corrupt PNG (libpng: %s)", path, problem.msg);
    }
    png_init_io(png, f);
    png_set_sig_bytes(png, (int)sizeof sig);
    png_read_info(png, info);
    const png_uint_32 w = png_get_image_width(png, info), h = png_get_image_height(png, info);
    int rc = 0;
    if (w != width || h != height) {
        rc = err_set(err, "'%s' is %lux%lu pixels, expected %zux%zu", path, (unsigned long)w, (unsigned long)h, width,
                     height);
    } else {
        want_gray8(png, info);
        if (png_get_channels(png, info) != 1 || png_get_rowbytes(png, info) != width)
            rc = err_set(err, "'%s': libpng cannot convert this PNG to 8-bit gray", path);
    }
    if (!rc && !(rows = malloc(height * sizeof *rows))) rc = err_set(err, "out of memory reading the PNG '%s'", path);
    if (!rc) {
        for (size_t y = 0; y < height; y++) rows[y] = pixels + y * width;
        png_read_image(png, rows);
        png_read_end(png, NULL); /* also reads the chunks after the pixels: a cut IEND is an error */
    }
    png_destroy_read_struct(&png, &info, NULL);
    free(rows);
    fclose(f);
    return rc;
}

int png_write_gray(const char *path, const uint8_t *pixels, size_t width, size_t height, Error *err) {
    if (width == 0 || height == 0 || width > 0x7fffffff || height > 0x7fffffff)
        return err_set(err, "cannot write the PNG '%s': %zux%zu pixels", path, width, height);
    FILE *f = fopen(path, "wb");
    if (!f) return err_errno(err, "cannot write the PNG '%s'", path);
    PngProblem problem = {{0}};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &problem, on_error, on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        png_destroy_write_struct(&png, NULL);
        fclose(f);
        return err_set(err, "out of memory writing the PNG '%s'", path);
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        fclose(f);
        return err_set(err, "cannot write the PNG '%s' (libpng: %s)", path, problem.msg);
    }
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)width, (png_uint_32)height, 8, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (size_t y = 0; y < height; y++) png_write_row(png, pixels + y * width);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    if (ferror(f) | fclose(f)) return err_errno(err, "cannot write the PNG '%s'", path);
    return 0;
}
