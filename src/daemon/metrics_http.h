/* Prometheus metrics over HTTP/1.1 (utargetd -o metrics_listen=ADDR:PORT). */
#ifndef UT_DAEMON_METRICS_HTTP_H
#define UT_DAEMON_METRICS_HTTP_H

#include <stddef.h>

struct io_loop;

/* Listens on addr ("IP:PORT" or "[IPv6]:PORT") in loop (the control
 * thread's). Returns 0 or -errno with a message in err. */
int metrics_http_start(struct io_loop *loop, const char *addr, char *err,
		       size_t errlen);
void metrics_http_stop(void);

#endif
