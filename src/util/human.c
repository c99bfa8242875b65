#include "util/human.h"

#include <stdio.h>

void ut_bytes_to_human(unsigned long long n, char *buf, size_t len)
{
	static const char *const units[] = { "KiB", "MiB", "GiB", "TiB",
					     "PiB" };
	double v;

	if (n < 1024) {
		snprintf(buf, len, "%llu bytes", n);
		return;
	}
	v = (double)n / 1024.0;
	for (int i = 0; i < 5; i++) {
		if (v < 1024.0 || i == 4) {
			snprintf(buf, len, "%3.1f%s", v, units[i]);
			return;
		}
		v /= 1024.0;
	}
}
