/* check_fatal: that a call ends the process through fatal() with a given message. The call runs
 * in a forked child, since fatal() does not return; a child that comes back from the call exits
 * 0, which fails the check. */
#ifndef MAEC_TESTS_EXPECT_FATAL_H
#define MAEC_TESTS_EXPECT_FATAL_H

#include "../testing.h"

#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static inline void check_fatal(void (*fn)(void *ctx), void *ctx, const char *expect,
                               const char *what)
{
    int pipefd[2];
    CHECK(pipe(pipefd) == 0, "%s: pipe failed", what);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(pipefd[1], STDERR_FILENO);
        close(pipefd[0]);
        fn(ctx);
        _exit(0);
    }
    close(pipefd[1]);
    char msg[2048];
    size_t len = 0;
    ssize_t n;
    while (len < sizeof msg - 1 && (n = read(pipefd[0], msg + len, sizeof msg - 1 - len)) > 0)
        len += (size_t)n;
    msg[len] = '\0';
    close(pipefd[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) != 0, "%s: did not end the process", what);
    CHECK(strstr(msg, expect) != NULL, "%s: the message lacks \"%s\": %s", what, expect, msg);
    printf("%s: fatal, \"%.*s\"\n", what, (int)strcspn(msg, "\n"), msg);
}

#endif
