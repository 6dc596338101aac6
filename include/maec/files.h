/* Small file-system helpers shared by the writers (checkpoints, metrics, datasets). */
#ifndef MAEC_FILES_H
#define MAEC_FILES_H

#include "maec/error.h"

/* mkdir -p: creates dir and its missing parents; an existing directory is fine. */
int make_dirs(const char *dir, MaecError *err);

#endif
