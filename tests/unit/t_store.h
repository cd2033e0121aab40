/*
 * t_store.h - store helpers for the unit tests (header only, with t.h).
 */
#ifndef T_STORE_H
#define T_STORE_H

#include "store.h"
#include "t.h"

/* A new empty store in a fresh directory: *dir (if set) is removed and
 * freed first and then names the new one. NULL if the store cannot be
 * created. */
static inline st_store *t_store_fresh(char **dir)
{
    if (*dir) {
        t_rmrf(*dir);
        free(*dir);
    }
    *dir = t_tmpdir();
    st_store *st = NULL;
    if (st_open(*dir, ST_OPEN_CREATE, &st))
        return NULL;
    return st;
}

#endif
