/* Worker threads, one event loop each. A connection is placed on the
 * least-loaded worker and lives there for life (docs/architecture.md "Threads"). */
#include "io/workers.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"

struct worker {
	struct io_loop *loop;
	pthread_t thread;
	bool started;
};

static struct worker *workers;
static int nworkers;

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	sigset_t set;

	/* Signals are the main thread's business. */
	sigfillset(&set);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	io_loop_run(w->loop);
	return NULL;
}

int io_workers_start(int n)
{
	int i, rc;

	if (n < 1)
		n = 1;
	workers = calloc((size_t)n, sizeof(*workers));
	if (!workers)
		return -ENOMEM;
	nworkers = n;
	for (i = 0; i < n; i++) {
		rc = io_loop_create(&workers[i].loop, i);
		if (rc)
			goto fail;
		rc = -pthread_create(&workers[i].thread, NULL, worker_main,
				     &workers[i]);
		if (rc)
			goto fail;
		workers[i].started = true;
	}
	return 0;
fail:
	log_err("cannot start worker %d: %s", i, strerror(-rc));
	io_workers_stop();
	return rc;
}

void io_workers_stop(void)
{
	int i;

	for (i = 0; i < nworkers; i++)
		if (workers[i].started)
			io_loop_stop(workers[i].loop);
	for (i = 0; i < nworkers; i++) {
		if (workers[i].started)
			pthread_join(workers[i].thread, NULL);
		io_loop_destroy(workers[i].loop);
	}
	free(workers);
	workers = NULL;
	nworkers = 0;
}

int io_workers_count(void)
{
	return nworkers;
}

struct io_loop *io_workers_get(int i)
{
	return i >= 0 && i < nworkers ? workers[i].loop : NULL;
}

struct io_loop *io_workers_pick(void)
{
	int i, best = 0;

	for (i = 1; i < nworkers; i++)
		if (io_loop_load(workers[i].loop) <
		    io_loop_load(workers[best].loop))
			best = i;
	return nworkers ? workers[best].loop : NULL;
}
