/* miniquant: the layers of MiniGPT and MiniLlama, forward and backward, one function per layer
 * and direction.
 *
 * Dimensions, as everywhere in miniquant: B batch, T time (sequence), C channels, OC output
 * channels, NH heads, V vocabulary. Tensors are row-major, the last index contiguous.
 * Backward functions ACCUMULATE (+=) into every gradient they are given, so callers zero them.
 * Linear weights are W[OC][C] (out x in), as PyTorch and llama.cpp store them. */
#ifndef MINIQUANT_LAYERS_H
#define MINIQUANT_LAYERS_H

/* out (B*T, C) = wte[inp] + wpe[t]; inp (B,T), wte (V,C), wpe (maxT,C) */
void mq_encoder_forward(float *out, const int *inp, const float *wte, const float *wpe, int B,
                        int T, int C);
void mq_encoder_backward(float *dwte, float *dwpe, const float *dout, const int *inp, int B, int T,
                         int C);

/* out (N, C) = (inp - mean) / sqrt(var + 1e-5) * weight + bias; mean, rstd (N) saved for
 * backward. N = B*T rows. */
void mq_layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                          const float *weight, const float *bias, int N, int C);
void mq_layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                           const float *inp, const float *weight, const float *mean,
                           const float *rstd, int N, int C);

/* out (N, OC) = inp (N, C) @ weight (OC, C)^T + bias (OC); bias may be NULL. OpenBLAS sgemm. */
void mq_matmul_forward(float *out, const float *inp, const float *weight, const float *bias, int N,
                       int C, int OC);
/* out[o0 .. o1) = rows o0 .. o1 of weight (OC, C) times x (C), plus bias (may be NULL): OpenBLAS
 * sgemv, on the calling thread alone inside a parallel region (the decode step's share). */
void mq_matvec_rows(float *out, const float *x, const float *weight, const float *bias, int C,
                    int o0, int o1);
/* dinp (N,C) += dout @ weight; dweight (OC,C) += dout^T @ inp; dbias (OC) += sum over N.
 * dbias may be NULL. */
void mq_matmul_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                        const float *inp, const float *weight, int N, int C, int OC);

/* Causal self-attention. inp (B,T,3C) holds Q, K, V (in that order along the last axis);
 * out (B,T,C); att (B,NH,T,T) keeps the softmax probabilities for backward. Scale 1/sqrt(C/NH).
 */
void mq_attention_forward(float *out, float *att, const float *inp, int B, int T, int C, int NH);
/* dinp (B,T,3C) += ...; datt (B,NH,T,T) is scratch (overwritten). */
void mq_attention_backward(float *dinp, float *datt, const float *dout, const float *inp,
                           const float *att, int B, int T, int C, int NH);

/* Grouped-query causal attention: q (B,T,NH*hs), k and v (B,T,NKV*hs) (after RoPE), out
 * (B,T,NH*hs), att (B,NH,T,T) keeps the softmax probabilities; query head h reads key/value head
 * h / (NH / NKV). Scale 1/sqrt(hs). With NKV = NH and one fused buffer it is
 * mq_attention_forward, operation for operation. */
void mq_attention_gqa_forward(float *out, float *att, const float *q, const float *k,
                              const float *v, int B, int T, int NH, int NKV, int hs);
/* dq, dk, dv (shapes of q, k, v) = beta * themselves + the gradients; datt is scratch. */
void mq_attention_gqa_backward(float *dq, float *dk, float *dv, float *datt, const float *dout,
                               const float *q, const float *k, const float *v, const float *att,
                               int B, int T, int NH, int NKV, int hs, float beta);

/* RMSNorm: out (N,C) = inp / sqrt(mean(inp^2) + eps) * weight; rstd (N) saved for backward. */
void mq_rmsnorm_forward(float *out, float *rstd, const float *inp, const float *weight, int N,
                        int C, float eps);
/* dinp (N,C) += ...; dweight (C) += ... */
void mq_rmsnorm_backward(float *dinp, float *dweight, const float *dout, const float *inp,
                         const float *weight, const float *rstd, int N, int C);

/* Rotary position embeddings in place on x (B,T,n_heads,hs), llama.cpp's "normal" ordering:
 * pair (2i, 2i+1), i < n_rot/2, of each head at position t turns by the angle whose cosine and
 * sine are rope[(t * n_rot/2 + i) * 2 + {0, 1}]. Backward turns d back in place. */
void mq_rope_forward(float *x, const float *rope, int B, int T, int n_heads, int hs, int n_rot);
void mq_rope_backward(float *d, const float *rope, int B, int T, int n_heads, int hs, int n_rot);

/* SwiGLU: out (N) = silu(gate) * up. Backward OVERWRITES dgate and dup. */
void mq_swiglu_forward(float *out, const float *gate, const float *up, int N);
void mq_swiglu_backward(float *dgate, float *dup, const float *dout, const float *gate,
                        const float *up, int N);

/* GELU, tanh approximation (GPT-2's). */
void mq_gelu_forward(float *out, const float *inp, int N);
void mq_gelu_backward(float *dinp, const float *inp, const float *dout, int N);

/* out = inp1 + inp2 (N elements) */
void mq_residual_forward(float *out, const float *inp1, const float *inp2, int N);
void mq_residual_backward(float *dinp1, float *dinp2, const float *dout, int N);

/* The same for one row or a range of elements, by the calling thread alone (no parallel region):
 * what the decode step's parallel region runs. The functions above compute each row and element
 * with these, so both give the same numbers. */
void mq_layernorm_row(float *out, float *mean, float *rstd, const float *x, const float *weight,
                      const float *bias, int C);
void mq_rmsnorm_row(float *out, float *rstd, const float *x, const float *weight, int C, float eps);
/* cs: the position's n_rot/2 pairs of cosine and sine (rope + t * n_rot). */
void mq_rope_row(float *x, const float *cs, int n_heads, int hs, int n_rot);
/* elements i0 .. i1-1 */
void mq_gelu_range(float *out, const float *inp, int i0, int i1);
void mq_swiglu_range(float *out, const float *gate, const float *up, int i0, int i1);
/* The numerators of a softmax over a (n): out[j] = exp(a[j] - maxv) (out may be a) with the
 * models' exponential (a few ulp, vectorised); returns their sum. */
float mq_softmax_numerators(float *out, const float *a, int n, float maxv);

/* probs (N, V) = softmax(logits); losses (N) = -log probs[target]. */
void mq_softmax_forward(float *probs, const float *logits, int N, int V);
void mq_crossentropy_forward(float *losses, const float *probs, const int *targets, int N, int V);
/* dlogits (N,V) += (probs - onehot(target)) * dlosses[i] */
void mq_crossentropy_softmax_backward(float *dlogits, const float *dlosses, const float *probs,
                                      const int *targets, int N, int V);

/* Fused softmax and cross-entropy, as the model runs them: probs (N,V) = softmax(logits) and,
 * when targets is non-NULL, losses (N) = logsumexp(logits) - logits[target] (the same value as
 * -log probs[target], without the rounding of the probability). */
void mq_softmax_crossentropy_forward(float *probs, float *losses, const float *logits,
                                     const int *targets, int N, int V);

/* The forms the model's backward pass uses. Each activation gradient there has one consumer, so
 * these OVERWRITE dinp (dlogits) instead of accumulating into it, which saves zeroing a buffer
 * per layer; parameter gradients (dweight, dbias) still accumulate. */
void mq_matmul_backward_overwrite(float *dinp, float *dweight, float *dbias, const float *dout,
                                  const float *inp, const float *weight, int N, int C, int OC);
void mq_attention_backward_overwrite(float *dinp, float *datt, const float *dout, const float *inp,
                                     const float *att, int B, int T, int C, int NH);
/* d (N) holds dout on entry and dinp on return. */
void mq_gelu_backward_inplace(float *d, const float *inp, int N);
void mq_crossentropy_softmax_backward_overwrite(float *dlogits, const float *dlosses,
                                                const float *probs, const int *targets, int N,
                                                int V);

#endif
