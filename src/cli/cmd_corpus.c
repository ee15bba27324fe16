/* miniquant corpus: WordNet glosses -> documents -> train/valid/test split files. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "miniquant/corpus.h"
#include "miniquant/fileio.h"

static const char ABOUT[] =
    "Builds the corpus: one document per WordNet 3.0 synset (its gloss), split 90/5/5 into\n"
    "train / valid / test by a hash of the synset. Prints document, word and byte counts per\n"
    "split and writes DIR/{train,valid,test}.txt, one document per line.\n";

int cli_write_corpus(const mq_corpus_t *c, const char *dir, mq_error_t *err) {
    int rc = mq_mkdir_p(dir, err);
    for (int s = 0; s < MQ_NUM_SPLITS && rc == MQ_OK; s++) {
        char path[4096], *text;
        size_t len;
        snprintf(path, sizeof path, "%s/%s.txt", dir, mq_split_name((mq_split_t)s));
        rc = mq_corpus_split_text(c, (mq_split_t)s, &text, &len, err);
        if (rc == MQ_OK) rc = mq_write_file(path, text, len, err);
        if (rc == MQ_OK) free(text);
    }
    return rc;
}

void cli_print_corpus_stats(const mq_corpus_t *c) {
    mq_split_stats_t st[MQ_NUM_SPLITS];
    mq_corpus_stats(c, st);
    mq_split_stats_t tot = {0};
    printf("%-8s %10s %12s %12s\n", "split", "documents", "words", "bytes");
    for (int s = 0; s < MQ_NUM_SPLITS; s++) {
        printf("%-8s %10zu %12zu %12zu\n", mq_split_name((mq_split_t)s), st[s].docs, st[s].words,
               st[s].bytes);
        tot.docs += st[s].docs;
        tot.words += st[s].words;
        tot.bytes += st[s].bytes;
    }
    printf("%-8s %10zu %12zu %12zu\n", "total", tot.docs, tot.words, tot.bytes);
}

int cmd_corpus(int argc, char **argv) {
    const char *wordnet = NULL, *out = NULL;
    cli_option_t opts[] = {
        {CLI_OPT_WORDNET(&wordnet)},
        {.name = "out", .arg = "DIR", .str = &out, .def = "data/corpus",
         .help = "where the split files go"},
        {0},
    };
    const cli_command_t cmd = {.name = "corpus", .about = ABOUT, .opts = opts};
    int prc = cli_parse(&cmd, argc, argv, NULL);
    if (prc != CLI_CONTINUE) return prc;
    mq_error_t err = {0};
    mq_corpus_t c;
    if (mq_corpus_load_wordnet(wordnet, &c, &err)) return cli_fail(&err);
    int rc = cli_write_corpus(&c, out, &err);
    if (rc == MQ_OK) {
        cli_print_corpus_stats(&c);
        printf("wrote %s/{train,valid,test}.txt\n", out);
    }
    mq_corpus_free(&c);
    return rc ? cli_fail(&err) : 0;
}
