/*
 * JPEG decoding with libjpeg-turbo's decoder (vendored by mozjpeg-sys), called the way Pillow's
 * JpegDecode.c calls it, so that the pixels are the container's pixels bit for bit (islow IDCT,
 * fancy upsampling, libjpeg's colour conversion).
 *
 * Why a C shim: libjpeg reports fatal errors through error_exit, whose default calls exit().
 * The only portable way to turn that into an error value is setjmp/longjmp, and a longjmp must
 * not cross Rust frames. Every entry point below sets its own jump target and returns a status;
 * libjpeg's own memory is released by jpeg_destroy_decompress in cg_jpeg_free. No Rust code runs
 * between a setjmp and its longjmp.
 *
 * Truncated data: Pillow's source manager suspends when the data runs out and ImageFile.load then
 * raises "image file is truncated"; libjpeg's corrupt-data warnings are otherwise ignored
 * (Pillow's output_message does nothing). The source manager here does the same: running out of
 * data while reading the header or the pixels is an error, while jpeg_finish_decompress (after
 * every scanline was read, where Pillow ignores a suspension too) gets a fake EOI.
 */
#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jpeglib.h"
#include "jerror.h"

#define CG_MSG_LEN 256

typedef struct {
  struct jpeg_error_mgr pub;
  jmp_buf jump;
} cg_error_mgr;

typedef struct {
  struct jpeg_decompress_struct cinfo;
  struct jpeg_source_mgr src;
  cg_error_mgr err;
  int created;   /* jpeg_create_decompress succeeded */
  int finishing; /* every scanline was read: a missing EOI is tolerated */
  char message[CG_MSG_LEN];
} cg_jpeg;

static void cg_fail(j_common_ptr cinfo, const char *message) {
  cg_jpeg *h = (cg_jpeg *)cinfo->client_data;
  snprintf(h->message, CG_MSG_LEN, "%s", message);
  longjmp(((cg_error_mgr *)cinfo->err)->jump, 1);
}

static void cg_error_exit(j_common_ptr cinfo) {
  char buffer[JMSG_LENGTH_MAX];
  (*cinfo->err->format_message)(cinfo, buffer);
  cg_fail(cinfo, buffer);
}

/* Warnings (corrupt data that libjpeg recovers from) are not printed, as in Pillow. */
static void cg_output_message(j_common_ptr cinfo) { (void)cinfo; }

static void cg_init_source(j_decompress_ptr cinfo) { (void)cinfo; }

static boolean cg_fill_input_buffer(j_decompress_ptr cinfo) {
  static const JOCTET eoi[2] = {(JOCTET)0xFF, (JOCTET)JPEG_EOI};
  cg_jpeg *h = (cg_jpeg *)cinfo->client_data;
  if (!h->finishing) {
    cg_fail((j_common_ptr)cinfo, "image file is truncated");
  }
  cinfo->src->next_input_byte = eoi;
  cinfo->src->bytes_in_buffer = 2;
  return TRUE;
}

static void cg_skip_input_data(j_decompress_ptr cinfo, long num_bytes) {
  struct jpeg_source_mgr *src = cinfo->src;
  if (num_bytes <= 0) {
    return;
  }
  while ((size_t)num_bytes > src->bytes_in_buffer) {
    num_bytes -= (long)src->bytes_in_buffer;
    src->bytes_in_buffer = 0;
    (void)(*src->fill_input_buffer)(cinfo);
  }
  src->next_input_byte += (size_t)num_bytes;
  src->bytes_in_buffer -= (size_t)num_bytes;
}

static void cg_term_source(j_decompress_ptr cinfo) { (void)cinfo; }

cg_jpeg *cg_jpeg_new(void) {
  cg_jpeg *h = (cg_jpeg *)calloc(1, sizeof(cg_jpeg));
  return h;
}

void cg_jpeg_free(cg_jpeg *h) {
  if (h == NULL) {
    return;
  }
  if (h->created) {
    jpeg_destroy_decompress(&h->cinfo);
  }
  free(h);
}

const char *cg_jpeg_message(const cg_jpeg *h) { return h->message; }

/*
 * Reads the header of the `len` bytes at `data` (which must stay alive until cg_jpeg_free).
 * Returns 0 and the size, component count and sample precision, or -1 with a message.
 */
int cg_jpeg_read_header(cg_jpeg *h, const uint8_t *data, size_t len,
                        uint32_t *width, uint32_t *height, int *components,
                        int *precision) {
  h->cinfo.err = jpeg_std_error(&h->err.pub);
  h->err.pub.error_exit = cg_error_exit;
  h->err.pub.output_message = cg_output_message;
  if (setjmp(h->err.jump)) {
    return -1;
  }
  jpeg_create_decompress(&h->cinfo);
  h->created = 1;
  h->cinfo.client_data = h;
  h->src.init_source = cg_init_source;
  h->src.fill_input_buffer = cg_fill_input_buffer;
  h->src.skip_input_data = cg_skip_input_data;
  h->src.resync_to_restart = jpeg_resync_to_restart;
  h->src.term_source = cg_term_source;
  h->src.next_input_byte = data;
  h->src.bytes_in_buffer = len;
  h->cinfo.src = &h->src;
  (void)jpeg_read_header(&h->cinfo, TRUE);
  *width = (uint32_t)h->cinfo.image_width;
  *height = (uint32_t)h->cinfo.image_height;
  *components = h->cinfo.num_components;
  *precision = h->cinfo.data_precision;
  return 0;
}

/*
 * Decodes the image whose header was read into `out` (`out_len` bytes: width × height ×
 * `out_components`, where 1 asks for JCS_GRAYSCALE, 3 for JCS_RGB and 4 for JCS_CMYK, the output
 * spaces Pillow asks for in modes L, RGB and CMYK). libjpeg's own allocations are capped at
 * `max_memory` bytes. Returns 0, or -1 with a message.
 */
int cg_jpeg_decode(cg_jpeg *h, uint8_t *out, size_t out_len, int out_components,
                   long max_memory) {
  if (setjmp(h->err.jump)) {
    return -1;
  }
  switch (out_components) {
  case 1:
    h->cinfo.out_color_space = JCS_GRAYSCALE;
    break;
  case 3:
    h->cinfo.out_color_space = JCS_RGB;
    break;
  case 4:
    h->cinfo.out_color_space = JCS_CMYK;
    break;
  default:
    snprintf(h->message, CG_MSG_LEN, "unsupported output components %d",
             out_components);
    return -1;
  }
  h->cinfo.mem->max_memory_to_use = max_memory;
  (void)jpeg_start_decompress(&h->cinfo);
  size_t row = (size_t)h->cinfo.output_width * (size_t)h->cinfo.output_components;
  if (h->cinfo.output_components != out_components ||
      row * (size_t)h->cinfo.output_height != out_len) {
    snprintf(h->message, CG_MSG_LEN,
             "decoder output %ux%u with %d components does not match the header",
             (unsigned)h->cinfo.output_width, (unsigned)h->cinfo.output_height,
             h->cinfo.output_components);
    return -1;
  }
  while (h->cinfo.output_scanline < h->cinfo.output_height) {
    JSAMPROW line = out + (size_t)h->cinfo.output_scanline * row;
    if (jpeg_read_scanlines(&h->cinfo, &line, 1) != 1) {
      snprintf(h->message, CG_MSG_LEN, "image file is truncated");
      return -1;
    }
  }
  h->finishing = 1;
  (void)jpeg_finish_decompress(&h->cinfo);
  return 0;
}
