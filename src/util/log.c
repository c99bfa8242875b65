#include "util/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

enum ut_log_level ut_log_level = UT_LOG_INFO;

static const char *const lvl_name[] = { "error", "warning", "info", "debug" };

void ut_log(enum ut_log_level lvl, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	struct timespec ts;
	struct tm tm;

	if (lvl > ut_log_level)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	clock_gettime(CLOCK_REALTIME, &ts);
	localtime_r(&ts.tv_sec, &tm);
	/* One fprintf per line keeps lines from different workers whole. */
	fprintf(stderr, "%02d:%02d:%02d.%03ld utargetd %s: %s\n", tm.tm_hour,
		tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000, lvl_name[lvl], msg);
}
