/* Live statistics (issue 20): the `stats.get` document and its Prometheus
 * text exposition. Control thread only. */
#ifndef UT_CONTROL_STATS_H
#define UT_CONTROL_STATS_H

#include <jansson.h>
#include <stddef.h>

/* docs/control-api.md, `stats.get`; caller holds iscsi_fabric.lock (the
 * LUN list walks the fabric). */
json_t *ctl_stats_json(void);
/* Prometheus text format 0.0.4 of the same counters; malloc'ed, NUL
 * terminated, *len its length. NULL when out of memory. */
char *ctl_metrics_text(size_t *len);

#endif
