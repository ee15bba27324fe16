#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "miniquant/corpus.h"

Test(corpus, loads_fixture_documents_and_glosses) {
    mq_corpus_t c;
    mq_error_t err = {0};
    cr_assert_eq(mq_corpus_load_wordnet(MQ_TEST_DATA "/wordnet", &c, &err), MQ_OK, "%s", err.msg);
    cr_assert_eq(c.n_docs, 23u); /* 8 nouns + 8 verbs + 4 adjectives + 3 adverbs */
    /* data.noun is read first; its first gloss, trailing spaces removed */
    cr_assert_str_eq(c.docs[0].text, "a building where people live");
    cr_assert_eq(c.docs[0].len, strlen("a building where people live"));
    cr_assert_eq(c.docs[0].pos, 'n');
    cr_assert_eq(c.docs[0].offset, 100u);
    /* the satellite adjective counts as an adjective */
    int sat = 0;
    for (size_t i = 0; i < c.n_docs; i++)
        if (!strcmp(c.docs[i].text, "pleasing to the eye; \"a beautiful garden\"")) sat = c.docs[i].pos;
    cr_assert_eq(sat, 'a');
    mq_corpus_free(&c);
}

Test(corpus, split_is_a_pure_function_of_the_synset) {
    /* the same synset always lands in the same split, and the proportions are ~90/5/5 */
    size_t counts[MQ_NUM_SPLITS] = {0};
    for (uint32_t off = 0; off < 200000; off++) {
        mq_split_t s = mq_corpus_split_of('n', off * 37);
        cr_assert_eq(s, mq_corpus_split_of('n', off * 37));
        counts[s]++;
    }
    cr_assert(counts[MQ_SPLIT_TRAIN] > 178000 && counts[MQ_SPLIT_TRAIN] < 182000, "%zu",
              counts[MQ_SPLIT_TRAIN]);
    cr_assert(counts[MQ_SPLIT_VALID] > 9000 && counts[MQ_SPLIT_VALID] < 11000);
    cr_assert(counts[MQ_SPLIT_TEST] > 9000 && counts[MQ_SPLIT_TEST] < 11000);
    /* part of speech is part of the identity */
    int differ = 0;
    for (uint32_t off = 0; off < 1000; off++)
        differ += mq_corpus_split_of('n', off) != mq_corpus_split_of('v', off);
    cr_assert(differ > 0);
}

Test(corpus, malformed_lines_name_file_and_line) {
    mq_corpus_t c = {0};
    mq_error_t err = {0};
    const char *no_gloss = "  header\n00000100 29 n 01 dog 0 000 | a pet\n00000200 29 n 01 cat 0 000 no bar\n";
    cr_assert_eq(mq_corpus_parse_data(no_gloss, strlen(no_gloss), "data.noun", 'n', &c, &err),
                 MQ_ERR_FORMAT);
    cr_assert(strstr(err.msg, "data.noun: line 3"), "%s", err.msg);
    const char *bad_offset = "12x4 29 n 01 dog 0 000 | a pet\n";
    cr_assert_eq(mq_corpus_parse_data(bad_offset, strlen(bad_offset), "f", 'n', &c, &err),
                 MQ_ERR_FORMAT);
    cr_assert(strstr(err.msg, "f: line 1"), "%s", err.msg);
    const char *wrong_pos = "00000100 29 v 01 run 0 000 | move fast\n";
    cr_assert_eq(mq_corpus_parse_data(wrong_pos, strlen(wrong_pos), "data.noun", 'n', &c, &err),
                 MQ_ERR_FORMAT);
    const char nul[] = "00000100 29 n 01 dog 0 000 | a p\0et\n";
    cr_assert_eq(mq_corpus_parse_data(nul, sizeof nul - 1, "f", 'n', &c, &err), MQ_ERR_FORMAT);
    const char *truncated = "00000100 29 n";
    cr_assert_eq(mq_corpus_parse_data(truncated, strlen(truncated), "f", 'n', &c, &err),
                 MQ_ERR_FORMAT);
    cr_assert_eq(c.n_docs, 0u); /* failed parses add nothing */
    mq_corpus_free(&c);
}

Test(corpus, missing_installation_names_the_package) {
    mq_corpus_t c;
    mq_error_t err = {0};
    cr_assert_eq(mq_corpus_load_wordnet("/nonexistent/wordnet", &c, &err), MQ_ERR_IO);
    cr_assert(strstr(err.msg, "wordnet-base"), "%s", err.msg);
}

Test(corpus, split_text_joins_documents_by_newline_and_reads_back) {
    mq_corpus_t c;
    mq_error_t err = {0};
    cr_assert_eq(mq_corpus_load_wordnet(MQ_TEST_DATA "/wordnet", &c, &err), MQ_OK);
    mq_split_stats_t st[MQ_NUM_SPLITS];
    mq_corpus_stats(&c, st);
    cr_assert_eq(st[0].docs + st[1].docs + st[2].docs, c.n_docs);
    char *text;
    size_t len;
    cr_assert_eq(mq_corpus_split_text(&c, MQ_SPLIT_TRAIN, &text, &len, &err), MQ_OK);
    cr_assert_eq(len, st[MQ_SPLIT_TRAIN].bytes);
    size_t lines = 0;
    for (size_t i = 0; i < len; i++) lines += text[i] == '\n';
    cr_assert_eq(lines, st[MQ_SPLIT_TRAIN].docs);
    char path[] = "/tmp/mq-corpus-XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    cr_assert_eq(write(fd, text, len), (ssize_t)len);
    close(fd);
    mq_corpus_t back;
    cr_assert_eq(mq_corpus_load_text(path, MQ_SPLIT_TRAIN, &back, &err), MQ_OK, "%s", err.msg);
    cr_assert_eq(back.n_docs, st[MQ_SPLIT_TRAIN].docs);
    size_t k = 0;
    for (size_t i = 0; i < c.n_docs; i++)
        if (c.docs[i].split == MQ_SPLIT_TRAIN) cr_assert_str_eq(back.docs[k++].text, c.docs[i].text);
    unlink(path);
    free(text);
    mq_corpus_free(&back);
    mq_corpus_free(&c);
}
