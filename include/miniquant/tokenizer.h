/* miniquant: the two tokenizer models of GGUF files, byte-level BPE in the GPT-2 convention
 * (tokenizer.ggml.model "gpt2") and SentencePiece's (model "llama"), each encoding and decoding
 * exactly as llama.cpp does.
 *
 * BPE: text is split by GPT-2's pre-tokenization regex (through PCRE2), each piece's bytes are mapped
 * to printable unicode characters as GPT-2 does (bytes_to_unicode), and merges are applied by
 * rank. The vocabulary holds the 256 byte tokens, the learned merges, and <|endoftext|>.
 * The same code encodes with a vocabulary read from any GGUF file whose tokenizer model is
 * "gpt2" (tokenizer.ggml.tokens / token_type / merges), e.g. GPT-2's own 50,257 tokens.
 * decode(encode(x)) == x for every byte string.
 *
 * SentencePiece (LLaMA, Mistral, TinyLlama, ...): a vocabulary of tokens with scores, no merges.
 * Text is prefixed with a space (add_space_prefix) and its spaces written as U+2581; starting
 * from one symbol per UTF-8 character, the adjacent pair whose joined text is the token of
 * highest score is merged (the leftmost on ties) until none is left; a symbol that is no token is
 * written as its bytes' tokens <0xXX> (byte fallback). Decoding turns U+2581 back into spaces and
 * drops the prefix space. decode(encode(x)) == x for valid UTF-8 text without U+2581 or
 * control-token texts when the vocabulary has the 256 byte tokens. */
#ifndef MINIQUANT_TOKENIZER_H
#define MINIQUANT_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "miniquant/error.h"
#include "miniquant/gguf.h"

#define MQ_EOT_TEXT "<|endoftext|>"

typedef struct mq_tokenizer mq_tokenizer_t;

/* tokenizer.ggml.model: "gpt2" or "llama". */
typedef enum { MQ_TOKENIZER_BPE = 0, MQ_TOKENIZER_SPM = 1 } mq_tokenizer_model_t;

/* Learns merges on documents (docs[i] has lens[i] bytes) until the vocabulary has vocab_size
 * tokens: 256 byte tokens + (vocab_size - 257) merged tokens + <|endoftext|>, in that order.
 * Deterministic: ties between equally frequent pairs go to the pair whose left token's text, then
 * right token's text, is smaller (strcmp). When a merge spells a token that already exists
 * ("ab"+"c" after "a"+"bc") it is kept and maps to that token. MQ_ERR_ARG when the documents
 * cannot give that many tokens. Shows a progress bar. */
int mq_tokenizer_train(const char *const *docs, const size_t *lens, size_t n_docs, int vocab_size,
                       mq_tokenizer_t **out, mq_error_t *err);

void mq_tokenizer_free(mq_tokenizer_t *t);

int mq_tokenizer_n_vocab(const mq_tokenizer_t *t);
/* Id of <|endoftext|>, or -1 when the vocabulary has none. */
int32_t mq_tokenizer_eot(const mq_tokenizer_t *t);
/* Ids of the beginning- and end-of-sequence tokens, or -1 when the vocabulary has none. */
int32_t mq_tokenizer_bos(const mq_tokenizer_t *t);
int32_t mq_tokenizer_eos(const mq_tokenizer_t *t);
mq_tokenizer_model_t mq_tokenizer_model(const mq_tokenizer_t *t);
/* Whether MQ_TOK_ADD_SPECIAL begins with the beginning-of-sequence token (add_bos_token). */
int mq_tokenizer_adds_bos(const mq_tokenizer_t *t);
/* "gpt2" or "llama", as tokenizer.ggml.model spells the model. */
const char *mq_tokenizer_model_name(const mq_tokenizer_t *t);
/* The stored text of a token (GPT-2's unicode form of its bytes), or NULL for a bad id. */
const char *mq_tokenizer_token_text(const mq_tokenizer_t *t, int32_t id);

/* MQ_TOK_PARSE_SPECIAL: control tokens' texts in the text ("<|endoftext|>", "<s>") are those
 * tokens. MQ_TOK_ADD_SPECIAL: the beginning-of-sequence token first and the end-of-sequence token
 * last, where the vocabulary asks for them (add_bos / add_eos), as llama.cpp's add_special. */
enum { MQ_TOK_PARSE_SPECIAL = 1, MQ_TOK_ADD_SPECIAL = 2 };

/* Encodes len bytes of text (any bytes, not necessarily valid UTF-8) to a malloc'd id array. */
int mq_tokenizer_encode(const mq_tokenizer_t *t, const char *text, size_t len, int flags,
                        int32_t **ids, size_t *n_ids, mq_error_t *err);
/* Decodes ids to a malloc'd byte string (NUL-terminated, the NUL not counted in *len), as
 * llama.cpp's detokenize with special tokens shown: a SentencePiece vocabulary that adds a space
 * prefix drops one leading space of the first token. */
int mq_tokenizer_decode(const mq_tokenizer_t *t, const int32_t *ids, size_t n_ids, char **text,
                        size_t *len, mq_error_t *err);

/* Stores the tokenizer as llama.cpp expects. BPE: tokenizer.ggml.model = "gpt2",
 * tokenizer.ggml.pre = "gpt-2", tokens, token_type, merges, bos/eos ids, add_bos/add_eos.
 * SentencePiece: model "llama", tokens, scores, token_type, bos/eos/unknown ids, add_bos,
 * add_eos, add_space_prefix. */
int mq_tokenizer_to_gguf(const mq_tokenizer_t *t, mq_gguf_t *g, mq_error_t *err);
/* Loads the tokenizer of a GGUF file whose tokenizer.ggml.model is "gpt2" or "llama"; name is
 * used in messages. Validates every token, score and merge (a merge must join two existing tokens
 * into an existing token; a byte token must be spelled <0xXX>). Missing SentencePiece keys take
 * llama.cpp's defaults: bos 1, eos 2, unknown 0, add_bos true, add_eos false, add_space_prefix
 * true. */
int mq_tokenizer_from_gguf(const mq_gguf_t *g, const char *name, mq_tokenizer_t **out,
                           mq_error_t *err);

/* Token types, numbered as llama.cpp's enum llama_token_type (tokenizer.ggml.token_type).
 * Control and unknown tokens are matched in text only with MQ_TOK_PARSE_SPECIAL, user-defined
 * ones always; all three decode to their text as it is. BPE: other tokens are bytes in GPT-2's
 * unicode form. SentencePiece: normal tokens decode with U+2581 as a space, byte tokens to their
 * byte, unused and undefined ones to nothing. */
enum {
    MQ_TOKEN_UNDEFINED = 0,
    MQ_TOKEN_NORMAL = 1,
    MQ_TOKEN_UNKNOWN = 2,
    MQ_TOKEN_CONTROL = 3,
    MQ_TOKEN_USER_DEFINED = 4,
    MQ_TOKEN_UNUSED = 5,
    MQ_TOKEN_BYTE = 6,
};

/* A token's type (MQ_TOKEN_*), or -1 for a bad id. */
int32_t mq_tokenizer_token_type(const mq_tokenizer_t *t, int32_t id);
/* Number of merges; more than the learned tokens when two merges spell the same token. */
int mq_tokenizer_n_merges(const mq_tokenizer_t *t);
/* The two token ids that merge rank joins; MQ_ERR_ARG for a bad rank. */
int mq_tokenizer_merge(const mq_tokenizer_t *t, int rank, int32_t *left, int32_t *right);

/* Builds a tokenizer from a vocabulary in GGUF's form: token texts, their types (NULL: all
 * normal) and merges "left right" in rank order. Checked as mq_tokenizer_from_gguf checks a file;
 * messages start with name and use GGUF's key names. */
int mq_tokenizer_from_vocab(const char *const *tokens, const int32_t *types, int32_t n_tokens,
                            const char *const *merges, int32_t n_merges, const char *name,
                            mq_tokenizer_t **out, mq_error_t *err);

/* A SentencePiece vocabulary's settings (tokenizer.ggml.*); an id of -1 is absent. */
typedef struct mq_spm_config {
    int add_space_prefix, add_bos, add_eos;
    int32_t bos, eos, unk;
} mq_spm_config_t;

/* Builds a SentencePiece tokenizer from token texts (U+2581 for spaces, <0xXX> for byte tokens),
 * their scores (NULL: all 0) and types (NULL: all normal). Checked as mq_tokenizer_from_gguf
 * checks a file; messages start with name. */
int mq_tokenizer_from_spm_vocab(const char *const *tokens, const float *scores,
                                const int32_t *types, int32_t n_tokens,
                                const mq_spm_config_t *cfg, const char *name,
                                mq_tokenizer_t **out, mq_error_t *err);

/* GPT-2 pre-tokenization: calls piece(start, len, ctx) for each piece of text in order; the
 * pieces cover the text exactly. Invalid UTF-8 bytes become pieces of their own. */
int mq_pretokenize(const char *text, size_t len,
                   void (*piece)(const char *start, size_t len, void *ctx), void *ctx,
                   mq_error_t *err);

#endif
