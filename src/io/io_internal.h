/* miniquant: what the io module's files share (private to src/io). */
#ifndef MINIQUANT_IO_INTERNAL_H
#define MINIQUANT_IO_INTERNAL_H

#include <stddef.h>

#include "miniquant/error.h"
#include "miniquant/gguf.h"
#include "miniquant/model.h"

/* The n values of tensor t (F32, F16, or with allow_blocks any block type of format.h) into dst;
 * a type or size it cannot take is an error naming file and tensor. */
int mq_io_read_floats(const char *file, const mq_gguf_tensor_t *t, int allow_blocks, float *dst,
                      size_t n, mq_error_t *err);

/* The tensor of parameter p at layer l in g (name: its name, into buf); a llama file without
 * output.weight ties the output Linear to token_embd, as llama.cpp reads it. NULL when absent. */
const mq_gguf_tensor_t *mq_io_param_tensor(const mq_gguf_t *g, const mq_gpt_config_t *cfg, int p,
                                           int l, char *name, size_t n);

#endif
