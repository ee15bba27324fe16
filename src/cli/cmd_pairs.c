/* miniquant pairs: the verb-tense minimal pairs, written in the BLiMP jsonl layout. */
#include <stdio.h>

#include "cli.h"
#include "miniquant/pairs.h"

static const char ABOUT[] =
    "Builds the verb-tense minimal pairs from the test split's usage examples (WordNet 3.0: verb\n"
    "lemmas from index.verb, irregular forms from verb.exc, regular inflection otherwise) and\n"
    "writes them in the BLiMP jsonl layout (sentence_good, sentence_bad; one line per\n"
    "alternative). Prints how the set was built. Score any such file with\n"
    "'miniquant eval --model M.gguf --pairs FILE.jsonl'.\n";

int cmd_pairs(int argc, char **argv) {
    const char *out = NULL, *wordnet = NULL;
    cli_option_t opts[] = {
        {.name = "out", .arg = "FILE.jsonl", .str = &out, .required = 1,
         .help = "the jsonl file to write"},
        {CLI_OPT_WORDNET(&wordnet)},
        {0},
    };
    const cli_command_t cmd = {.name = "pairs", .about = ABOUT, .opts = opts};
    int prc = cli_parse(&cmd, argc, argv, NULL);
    if (prc != CLI_CONTINUE) return prc;
    mq_error_t err = {0};
    mq_corpus_t c;
    if (mq_corpus_load_wordnet(wordnet, &c, &err)) return cli_fail(&err);
    mq_mp_set_t set = {0};
    mq_verbtense_stats_t st;
    int rc = mq_verbtense_build(&c, wordnet, 0, &set, &st, &err);
    if (rc == MQ_OK) rc = mq_blimp_write(out, &set, &err);
    if (rc == MQ_OK) {
        printf("test documents      %zu\n", st.docs);
        printf("usage examples      %zu (%zu gave items, %zu without a verb form, %zu all "
               "skipped)\n", st.examples, st.examples_used, st.no_verb_form, st.all_skipped);
        printf("skipped words       %zu ambiguous, %zu base forms in noun/adjective context, "
               "%zu -s after a determiner, %zu without alternative, %zu duplicates\n",
               st.skip_ambiguous, st.skip_base_context, st.skip_plural_det,
               st.skip_no_alternative, st.skip_duplicate);
        printf("items               %zu (%zu with a base-form original), %zu alternatives\n",
               st.items, st.items_base, st.alternatives);
        printf("wrote %s\n", out);
    }
    mq_mp_set_free(&set);
    mq_corpus_free(&c);
    return rc ? cli_fail(&err) : 0;
}
