/* miniquant: what the io module's files share (private to src/io). */
#ifndef MINIQUANT_IO_INTERNAL_H
#define MINIQUANT_IO_INTERNAL_H

#include <stddef.h>

#include "miniquant/error.h"
#include "miniquant/gguf.h"

/* The n values of tensor t (F32, F16, or with allow_blocks any block type of format.h) into dst;
 * a type or size it cannot take is an error naming file and tensor. */
int mq_io_read_floats(const char *file, const mq_gguf_tensor_t *t, int allow_blocks, float *dst,
                      size_t n, mq_error_t *err);

#endif
