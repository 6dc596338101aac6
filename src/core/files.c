#include "maec/files.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static int make_one(const char *path, const char *dir, MaecError *err)
{
    if (mkdir(path, 0777) == 0 || errno == EEXIST)
        return 0;
    return error_set(err, "cannot create the directory %s (for %s): %s", path, dir, strerror(errno));
}

int make_dirs(const char *dir, MaecError *err)
{
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", dir) >= (int)sizeof buf)
        return error_set(err, "directory path too long (%zu characters): %.64s...", strlen(dir), dir);
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            if (make_one(buf, dir, err))
                return -1;
            *p = '/';
        }
    return make_one(buf, dir, err);
}
