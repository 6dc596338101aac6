/* Keeps the key reference in docs/config.md equal to the key tables (job_docs_markdown(): the base
 * keys, objective.name and every objective's own).
 *   config_docs check docs/config.md    exit 1 when the generated section is out of date
 *   config_docs update docs/config.md   rewrite the generated section in place */
#include "maec/alloc.h"
#include "maec/job.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char begin_marker[] = "<!-- BEGIN GENERATED REFERENCE: edit src/io/config.c and src/objectives/*.c, not this section -->\n";
static const char end_marker[] = "<!-- END GENERATED REFERENCE -->";

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "config_docs: cannot read %s: %s\n", path, strerror(errno));
        return NULL;
    }
    char *text = NULL;
    size_t size = 0, used = 0, n;
    do {
        size = 2 * size + 4096;
        text = xrealloc(text, size + 1, "docs/config.md");
        n = fread(text + used, 1, size - used, f);
        used += n;
    } while (used == size);
    fclose(f);
    text[used] = '\0';
    return text;
}

static int write_text(const char *path, const char *head, size_t head_len, const char *middle, const char *tail)
{
    FILE *f = fopen(path, "wb");
    if (!f) {
        fprintf(stderr, "config_docs: cannot write %s: %s\n", path, strerror(errno));
        return 1;
    }
    fwrite(head, 1, head_len, f);
    fputs(middle, f);
    fputs(tail, f);
    return fclose(f) ? 1 : 0;
}

int main(int argc, char **argv)
{
    if (argc != 3 || (strcmp(argv[1], "check") && strcmp(argv[1], "update"))) {
        fprintf(stderr, "usage: config_docs check|update docs/config.md\n");
        return 2;
    }
    const char *path = argv[2];
    char *text = read_text(path);
    if (!text)
        return 2;
    char *begin = strstr(text, begin_marker), *end = begin ? strstr(begin, end_marker) : NULL;
    if (!end) {
        fprintf(stderr, "config_docs: %s lacks the lines\n%s%s\n", path, begin_marker, end_marker);
        free(text);
        return 1;
    }
    begin += strlen(begin_marker);
    char *generated = job_docs_markdown();
    int rc = 0;
    if (!strcmp(argv[1], "update")) {
        rc = write_text(path, text, (size_t)(begin - text), generated, end);
    } else if (strlen(generated) != (size_t)(end - begin) || strncmp(begin, generated, (size_t)(end - begin))) {
        fprintf(stderr, "config_docs: the key reference in %s differs from the key table in src/io/config.c; "
                        "regenerate it with\n  build/tests/lint/config_docs update docs/config.md\n", path);
        rc = 1;
    }
    free(generated);
    free(text);
    return rc;
}
