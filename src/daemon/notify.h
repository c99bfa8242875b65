/* Service manager notification (systemd's sd_notify protocol). */
#ifndef UT_DAEMON_NOTIFY_H
#define UT_DAEMON_NOTIFY_H

/* Sends "KEY=VALUE\n..." to $NOTIFY_SOCKET; 0 when there is none. */
int ut_sd_notify(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
