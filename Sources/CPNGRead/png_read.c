#include "png_read.h"

#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/// The state shared with libpng's callbacks: the unread input and the error message.
typedef struct {
    const unsigned char *data;
    size_t size;
    size_t offset;
    char *message;
    size_t message_size;
} read_state;

static void store_message(read_state *state, const char *text) {
    if (state->message_size > 0) {
        snprintf(state->message, state->message_size, "%s", text);
    }
}

/// libpng requires an error callback that does not return, so it jumps back to npid_png_read_rgb8.
static void on_error(png_structp png, png_const_charp text) {
    store_message((read_state *)png_get_error_ptr(png), text);
    png_longjmp(png, 1);
}

/// Warnings (such as a bad CRC in an ancillary chunk) do not stop decoding, as in the simplified API.
static void on_warning(png_structp png, png_const_charp text) {
    (void)png;
    (void)text;
}

static void read_bytes(png_structp png, png_bytep out, size_t count) {
    read_state *state = (read_state *)png_get_io_ptr(png);
    if (count > state->size - state->offset) {
        png_error(png, "the file ends before the image data is complete");
    }
    memcpy(out, state->data + state->offset, count);
    state->offset += count;
}

int npid_png_read_rgb8(const unsigned char *data, size_t size, unsigned char *pixels, size_t pixels_size,
                       char *message, size_t message_size) {
    read_state state = {data, size, 0, message, message_size};
    store_message(&state, "");
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &state, on_error, on_warning);
    if (png == NULL) {
        store_message(&state, "could not create a PNG reader");
        return -1;
    }
    png_infop info = png_create_info_struct(png);
    // Declared volatile because it is changed after setjmp and read after a longjmp.
    png_bytepp volatile rows = NULL;
    if (info == NULL || setjmp(png_jmpbuf(png))) {
        if (info == NULL) {
            store_message(&state, "could not create a PNG reader");
        }
        free(rows);
        png_destroy_read_struct(&png, info == NULL ? NULL : &info, NULL);
        return -1;
    }

    png_set_read_fn(png, &state, read_bytes);
    png_read_info(png, info);
    png_uint_32 width = png_get_image_width(png, info);
    png_uint_32 height = png_get_image_height(png, info);

    png_set_scale_16(png);
    png_set_palette_to_rgb(png);
    png_set_expand_gray_1_2_4_to_8(png);
    png_set_strip_alpha(png);
    png_set_gray_to_rgb(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);

    size_t row_bytes = (size_t)width * 3;
    if (png_get_rowbytes(png, info) != row_bytes || pixels_size / row_bytes < height) {
        png_error(png, "the decoded rows do not fit the 8-bit RGB buffer");
    }
    rows = malloc(sizeof(png_bytep) * height);
    if (rows == NULL) {
        png_error(png, "out of memory for the row pointers");
    }
    for (png_uint_32 y = 0; y < height; y++) {
        rows[y] = pixels + (size_t)y * row_bytes;
    }
    png_read_image(png, rows);

    free(rows);
    png_destroy_read_struct(&png, &info, NULL);
    return 0;
}
