/*
 * chunker.h - FastCDC content-defined chunking (Xia et al., 2016/2020):
 * a gear rolling hash with normalized chunking (a stricter mask below the
 * average size, a looser one above), cut-point skipping below the minimum.
 *
 * Boundaries depend only on the bytes since the previous boundary, so an
 * insert in the middle of a file changes only the chunks around it and the
 * chunking resynchronises afterwards.
 *
 * Pure functions, no allocation, any thread. Parameters are recorded in the
 * store's meta; changing them changes every boundary.
 */
#ifndef ST_CHUNKER_H
#define ST_CHUNKER_H

#include <stddef.h>
#include <stdint.h>

#define ST_CDC_MIN_DEFAULT (16u * 1024)
#define ST_CDC_AVG_DEFAULT (64u * 1024)
#define ST_CDC_MAX_DEFAULT (256u * 1024)
#define ST_CDC_MAX_LIMIT   (4u * 1024 * 1024) /* largest max accepted */

struct st_cdc_params {
    uint32_t min, avg, max;
};

/* 0 if min < avg < max, avg a power of two, 64 <= min, max <= ST_CDC_MAX_LIMIT;
 * else -LR_EPARAMS. */
int st_cdc_check(const struct st_cdc_params *p);
void st_cdc_defaults(struct st_cdc_params *p);

/* Find the first cut point in buf[0..len). Returns the chunk length:
 *  - a content-defined cut at or before p->max, or p->max when none;
 *  - 0 when len < p->max, no cut was found and !eof (more data needed);
 *  - len when eof and no cut found in len (<= max) bytes.
 * O(chunk). */
size_t st_cdc_cut(const struct st_cdc_params *p, const uint8_t *buf, size_t len, int eof);
/* st_cdc_cut when the caller knows that no chunk length up to known is a
 * cut (buf starts an old chunk whose first known bytes are unchanged, and
 * known is below that chunk's length): the scan starts at known instead
 * of min, with the same result. known <= min is a full scan. */
size_t st_cdc_cut_after(const struct st_cdc_params *p, const uint8_t *buf, size_t len, int eof,
                        size_t known);

#endif
