#ifndef NPID_PNG_READ_H
#define NPID_PNG_READ_H

#include <stddef.h>

/// Decodes a whole PNG file held in memory into 8-bit RGB with libpng's classic (non-simplified)
/// API. 16-bit samples are scaled with png_set_scale_16, and palettes and gray are expanded.
/// Alpha and tRNS are dropped without compositing, and gAMA, cHRM and iCCP are ignored.
///
/// The simplified API (png_image_finish_read) is not used for pixels because it converts files with
/// a gAMA chunk to sRGB, and in libpng 1.6.39 it scrambles the rows of 16-bit Adam7-interlaced
/// files when it scales them to 8 bits.
///
/// `pixels` must hold `width * height * 3` bytes for the width and height in the file's IHDR.
/// Returns 0 on success. On failure returns -1 and writes libpng's message, NUL-terminated, into
/// `message` (at most `message_size` bytes).
int npid_png_read_rgb8(const unsigned char *data, size_t size, unsigned char *pixels, size_t pixels_size,
                       char *message, size_t message_size);

#endif
