#include "util/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>

enum ut_log_level ut_log_level = UT_LOG_INFO;
static enum ut_log_sink sink = UT_LOG_STDERR;
static const int syslog_prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };

void ut_log_set_sink(enum ut_log_sink s)
{
	if (s == UT_LOG_SYSLOG && sink != UT_LOG_SYSLOG)
		openlog("utargetd", LOG_PID, LOG_DAEMON);
	sink = s;
}

int ut_log_stderr_is_journal(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	/* systemd sets "dev:ino" of the stream it connected; a redirected
	 * stderr (ExecStart=... 2>file, a child) no longer matches */
	if (!js || sscanf(js, "%llu:%llu", &dev, &ino) != 2 || fstat(2, &st))
		return 0;
	return st.st_dev == (dev_t)dev && st.st_ino == (ino_t)ino;
}

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
	if (sink == UT_LOG_SYSLOG) {
		syslog(syslog_prio[lvl], "%s", msg);
		return;
	}
	if (sink == UT_LOG_JOURNAL) {
		fprintf(stderr, "<%d>%s: %s\n", syslog_prio[lvl], lvl_name[lvl], msg);
		return;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	localtime_r(&ts.tv_sec, &tm);
	/* One fprintf per line keeps lines from different workers whole. */
	fprintf(stderr, "%02d:%02d:%02d.%03ld utargetd %s: %s\n", tm.tm_hour,
		tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000, lvl_name[lvl], msg);
}
