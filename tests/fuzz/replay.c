/*
 * replay.c - a main() for fuzz targets built without libFuzzer: feeds every
 * file in the directories (or files) named on the command line to
 * LLVMFuzzerTestOneInput, plus a few thousand deterministic mutations of
 * each, so `make check` exercises every decoder under gcc and ASan/UBSan.
 * Counts one test per input file (with its mutations): prints
 * "replay: N inputs, M runs" and "N passed, 0 failed" (a crash fails the
 * run instead).
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t rng = 0x243F6A8885A308D3ull;
static uint64_t next(void)
{
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return rng;
}

static int run_one(const uint8_t *buf, size_t len)
{
    int runs = 0;
    LLVMFuzzerTestOneInput(buf, len);
    runs++;
    uint8_t *m = malloc(len + 64);
    for (int i = 0; i < 2000; i++) {
        size_t n = len;
        memcpy(m, buf, len);
        switch (next() % 4) {
        case 0: if (n) m[next() % n] ^= (uint8_t)(1u << (next() % 8)); break;
        case 1: if (n) n = next() % n; break;                       /* truncate */
        case 2: for (int k = 0; k < 8; k++) m[n++] = (uint8_t)next(); break; /* extend */
        case 3: if (n) m[next() % n] = (uint8_t)next(); break;
        }
        LLVMFuzzerTestOneInput(m, n);
        runs++;
    }
    free(m);
    return runs;
}

static int inputs;

static int run_path(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return 0;
    if (S_ISDIR(st.st_mode)) {
        int runs = 0;
        DIR *d = opendir(path);
        struct dirent *e;
        while (d && (e = readdir(d))) {
            if (e->d_name[0] == '.')
                continue;
            char p[4096];
            snprintf(p, sizeof(p), "%s/%s", path, e->d_name);
            runs += run_path(p);
        }
        if (d)
            closedir(d);
        return runs;
    }
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    uint8_t *buf = malloc((size_t)st.st_size + 1);
    size_t n = fread(buf, 1, (size_t)st.st_size, f);
    fclose(f);
    int runs = run_one(buf, n);
    free(buf);
    inputs++;
    return runs;
}

int main(int argc, char **argv)
{
    int runs = run_one((const uint8_t *)"", 0);
    for (int i = 1; i < argc; i++)
        runs += run_path(argv[i]);
    printf("replay: %d inputs, %d runs\n", inputs, runs);
    printf("replay: %d passed, 0 failed\n", inputs);
    return 0;
}
