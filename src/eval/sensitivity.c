#include "miniquant/sensitivity.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "miniquant/progress.h"
#include "miniquant/qmodel.h"

int mq_sensitivity_run(mq_gpt_t *m, const mq_scheme_t *s, const int32_t *tokens, size_t n,
                       mq_sensitivity_t *out, mq_error_t *err) {
    memset(out, 0, sizeof *out);
    int nl = mq_qmodel_n_linear(&m->cfg);
    out->n = nl;
    out->names = calloc((size_t)nl, sizeof *out->names);
    out->ppl = calloc((size_t)nl, sizeof *out->ppl);
    out->gap_pct = calloc((size_t)nl, sizeof *out->gap_pct);
    if (!out->names || !out->ppl || !out->gap_pct) {
        mq_sensitivity_free(out);
        return mq_error_set(err, MQ_ERR_NOMEM, "out of memory");
    }
    mq_progress_t pb;
    mq_ppl_result_t r;
    mq_progress_mute(+1); /* one bar over the layers tells the story */
    int rc = mq_perplexity(m, tokens, n, MQ_PPL_DEFAULT, 0, 8, &r, err);
    mq_progress_mute(-1);
    if (rc) goto done;
    out->base_ppl = r.ppl;
    mq_progress_start(&pb, "sensitivity", nl);
    for (int i = 0; i < nl && rc == MQ_OK; i++) {
        mq_qmodel_linear_name(&m->cfg, i, out->names[i], sizeof out->names[i]);
        mq_qmodel_t q;
        mq_qmodel_opts_t o = {0, i, 1};
        rc = mq_qmodel_quantize(&q, m, s, &o, err);
        if (rc) break;
        mq_progress_mute(+1);
        rc = mq_perplexity(q.model, tokens, n, MQ_PPL_DEFAULT, 0, 8, &r, err);
        mq_progress_mute(-1);
        mq_qmodel_free(&q);
        if (rc) break;
        out->ppl[i] = r.ppl;
        out->gap_pct[i] = 100.0 * (r.ppl - out->base_ppl) / out->base_ppl;
        char extra[64];
        snprintf(extra, sizeof extra, " %s %+.3f%%", out->names[i], out->gap_pct[i]);
        mq_progress_update(&pb, i + 1, extra);
    }
    if (rc == MQ_OK) mq_progress_finish(&pb, NULL);
done:
    if (rc) mq_sensitivity_free(out);
    return rc;
}

void mq_sensitivity_free(mq_sensitivity_t *s) {
    free(s->names);
    free(s->ppl);
    free(s->gap_pct);
    memset(s, 0, sizeof *s);
}
