/*
 * stage.h - per-inode write staging: the bytes written to an open file
 * since its last commit, kept in memory as sorted, non-overlapping,
 * non-adjacent ranges. fs/ commits them to the store (st_ns_write) on
 * flush/fsync/release or when a bound is passed, and overlays them on
 * reads of the same inode so every handle sees its own writes at once.
 *
 * Costs: a write that extends a range (sequential writes) is amortised
 * O(len); a write touching no staged byte (random writes) is O(log n +
 * len) plus amortised O(n / FS_STAGE_YOUNG) moved ranges: it lands in a
 * small sorted array of young ranges, merged into the main one when full,
 * so a stage of thousands of scattered 4 KiB writes does not move
 * half of its ranges on every write. A write bridging ranges of both
 * arrays merges them first, O(n).
 *
 * Threads: none of its own; the caller serialises access (fs/ holds the
 * inode's lock). Memory: the stage owns its buffers; fs_stage_release()
 * frees them and leaves an empty, reusable stage.
 */
#ifndef FS_STAGE_H
#define FS_STAGE_H

#include <stddef.h>
#include <stdint.h>

struct fs_srange {
    uint64_t off;
    size_t len, cap;
    uint8_t *data;
};

/* A sorted array of ranges: r[i].off + r[i].len < r[i+1].off. */
struct fs_sarr {
    struct fs_srange *r;
    size_t n, cap;
};

#define FS_STAGE_YOUNG 256 /* ranges in the young array before it is merged */

struct fs_stage {
    struct fs_sarr m, y;  /* main and young ranges; no two of all touch */
    size_t n;             /* m.n + y.n */
    size_t bytes;         /* sum of every range's len */
    uint64_t born_ns;     /* monotonic time of the first write since commit */
    uint8_t *spare;       /* a buffer kept by fs_stage_clear for the next range */
    size_t spare_cap;
};

void fs_stage_init(struct fs_stage *s);
/* Free every range; the stage is empty (and reusable) afterwards. */
void fs_stage_release(struct fs_stage *s);
/* Empty the stage but keep the largest buffer for the next write: a
 * sequential writer then refills memory that is already mapped instead of
 * faulting in FS_STAGE_MAX_BYTES of fresh pages after every commit. */
void fs_stage_clear(struct fs_stage *s);
/* Stage len bytes at off, merging with overlapping or adjacent ranges.
 * Errors: -ENOMEM (the stage is unchanged), -EFBIG (off + len overflows). */
int fs_stage_write(struct fs_stage *s, uint64_t off, const void *buf, size_t len);
/* The ranges in increasing offset order: out[0..s->n) (the caller's
 * array) point into the stage, valid until its next change. */
void fs_stage_sorted(const struct fs_stage *s, const struct fs_srange **out);
/* 1 if any staged byte lies in [off, off+len). */
int fs_stage_overlaps(const struct fs_stage *s, uint64_t off, size_t len);
/* Copy the staged bytes that fall in [off, off+len) over dst[0..len). */
void fs_stage_overlay(const struct fs_stage *s, uint64_t off, size_t len, uint8_t *dst);
/* One past the last staged byte (0 if empty). */
uint64_t fs_stage_end(const struct fs_stage *s);
/* Drop staged bytes at or beyond size. */
void fs_stage_truncate(struct fs_stage *s, uint64_t size);

#endif
