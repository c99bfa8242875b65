/* Sizes as targetcli prints them (configshell's convert_bytes_to_human:
 * "512 bytes", "1.0MiB", "16.0GiB"); shared by the daemon's `ls`
 * summaries and utargetcli. */
#ifndef UT_UTIL_HUMAN_H
#define UT_UTIL_HUMAN_H

#include <stddef.h>

void ut_bytes_to_human(unsigned long long n, char *buf, size_t len);

#endif
