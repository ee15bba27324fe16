/* miniquant pairs: the verb-tense minimal pairs, written in the BLiMP jsonl layout. */
#include <stdio.h>

#include "cli.h"
#include "miniquant/pairs.h"

#define STRING_(x) #x
#define STRING(x) STRING_(x)

static const char ABOUT[] =
    "Builds the verb-tense minimal pairs and writes them in the BLiMP jsonl layout\n"
    "(sentence_good, sentence_bad, category, source; one line per alternative). Four\n"
    "categories: agreement (he walks / he walk), non_finite (will walk / will walked),\n"
    "participle (has gone / has went) and progressive (is taking / is took). Items come from\n"
    "the usage examples of the test split's glosses, where the context makes the verb's form\n"
    "obligatory, and from templates over WordNet 3.0 (person nouns as subjects, artifact nouns\n"
    "as objects, frequent transitive verbs), with the source \"template:<category>\",\n"
    STRING(MQ_VT_TEMPLATE_ITEMS) " per category. An alternative that could be grammatical\n"
    "where it stands (another tense, a spelling that is also a noun or adjective) is not\n"
    "offered. Prints how the set was built. Score any such file with\n"
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
    int rc = mq_verbtense_build(&c, wordnet, MQ_VT_TEMPLATE_ITEMS, &set, &st, &err);
    if (rc == MQ_OK) rc = mq_blimp_write(out, &set, &err);
    if (rc == MQ_OK) {
        printf("test documents      %zu\n", st.docs);
        printf("usage examples      %zu (%zu gave items)\n", st.examples, st.examples_used);
        printf("verb forms skipped  %zu without a context that makes the form obligatory, "
               "%zu ambiguous, %zu without an ungrammatical alternative, %zu repeated\n",
               st.skip_context, st.skip_ambiguous, st.skip_no_alternative, st.skip_duplicate);
        printf("template words      %zu verbs, %zu person nouns, %zu artifact nouns\n",
               st.template_verbs, st.template_subjects, st.template_objects);
        printf("%-19s %9s %9s %9s\n", "category", "examples", "templates", "items");
        for (int k = 1; k < MQ_VT_NUM_CATEGORIES; k++)
            printf("%-19s %9zu %9zu %9zu\n", mq_vt_category_name(k), st.from_examples[k],
                   st.from_templates[k], st.from_examples[k] + st.from_templates[k]);
        printf("items               %zu, %zu alternatives (%zu not offered: could be "
               "grammatical)\n",
               st.items, st.alternatives, st.alternatives_dropped);
        printf("wrote %s\n", out);
    }
    mq_mp_set_free(&set);
    mq_corpus_free(&c);
    return rc ? cli_fail(&err) : 0;
}
