// Debian's libjpeg-turbo (libturbojpeg0-dev) and libpng (libpng-dev), seen from Swift.
#include <turbojpeg.h>
#include <png.h>
