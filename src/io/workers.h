/* The pool of worker threads, one io_loop each (default: one per core). */
#ifndef UT_IO_WORKERS_H
#define UT_IO_WORKERS_H

#include "io/loop.h"

int io_workers_start(int n);
void io_workers_stop(void);
int io_workers_count(void);
struct io_loop *io_workers_get(int i);
/* The worker with the fewest connections. */
struct io_loop *io_workers_pick(void);

#endif
