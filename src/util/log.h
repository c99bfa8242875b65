/* Logging to stderr with a level; connection-scoped messages name the
 * initiator, ISID and CID themselves (see iscsi/conn.h). */
#ifndef UT_UTIL_LOG_H
#define UT_UTIL_LOG_H

enum ut_log_level { UT_LOG_ERR, UT_LOG_WARN, UT_LOG_INFO, UT_LOG_DEBUG };

extern enum ut_log_level ut_log_level;

/* Where lines go: stderr with a timestamp (a terminal, a test), stderr
 * with sd-daemon(3) "<N>" priority prefixes (journald already stamps and
 * the prefix keeps the level: `journalctl -p warning` works), or syslog
 * (daemonized, stderr is /dev/null). */
enum ut_log_sink { UT_LOG_STDERR, UT_LOG_JOURNAL, UT_LOG_SYSLOG };
void ut_log_set_sink(enum ut_log_sink sink);
/* True when stderr is the journal stream systemd gave us ($JOURNAL_STREAM). */
int ut_log_stderr_is_journal(void);

void ut_log(enum ut_log_level lvl, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_err(...) ut_log(UT_LOG_ERR, __VA_ARGS__)
#define log_warn(...) ut_log(UT_LOG_WARN, __VA_ARGS__)
#define log_info(...) ut_log(UT_LOG_INFO, __VA_ARGS__)
#define log_debug(...)                                                        \
	do {                                                                  \
		if (ut_log_level >= UT_LOG_DEBUG)                             \
			ut_log(UT_LOG_DEBUG, __VA_ARGS__);                    \
	} while (0)

#endif
