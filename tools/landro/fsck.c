/* fsck.c - `landro fsck [ARGS]`: runs landro-fsck (installed beside
 * landro, or found on PATH) with the same arguments and exit status. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cmd.h"

int fsck_main(int argc, char **argv)
{
    (void)argc;
    char self[PATH_MAX], path[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    argv[0] = "landro-fsck";
    if (n > 0) {
        self[n] = 0;
        char *slash = strrchr(self, '/');
        if (slash) {
            *slash = 0;
            if (snprintf(path, sizeof(path), "%s/landro-fsck", self) < (int)sizeof(path))
                execv(path, argv);
        }
    }
    execvp("landro-fsck", argv);
    fprintf(stderr, "landro: cannot run landro-fsck: %s\n", strerror(errno));
    return 8; /* fsck(8): operational error */
}
