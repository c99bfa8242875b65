/* JSON helpers of the control-layer harnesses (fuzz_rpc, fuzz_config):
 * make a random document safe to apply on this machine. */
#ifndef UT_FUZZ_JSON_H
#define UT_FUZZ_JSON_H

#include <dirent.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz_util.h"

#define FUZZ_SIZE_MAX (4u << 20)

static char fuzz_dir[256];
static unsigned short fuzz_port;

static inline void fuzz_json_clean(void);

static void fuzz_json_atexit(void)
{
	fuzz_json_clean();
	rmdir(fuzz_dir);
}

/* A private directory for every file the documents name (removed at
 * exit), and a port. */
static inline void fuzz_json_setup(void)
{
	snprintf(fuzz_dir, sizeof(fuzz_dir), "/tmp/utfuzz.XXXXXX");
	if (!mkdtemp(fuzz_dir))
		abort();
	fuzz_port = fuzz_free_port();
	atexit(fuzz_json_atexit);
}

/* Empties the private directory (one level: backups go in a subdir). */
static inline void fuzz_json_clean(void)
{
	char p[600];
	struct dirent *d;
	DIR *dir = opendir(fuzz_dir);

	if (!dir)
		return;
	while ((d = readdir(dir))) {
		if (!strcmp(d->d_name, ".") || !strcmp(d->d_name, ".."))
			continue;
		snprintf(p, sizeof(p), "%s/%s", fuzz_dir, d->d_name);
		if (unlink(p) && rmdir(p)) {
			DIR *sub = opendir(p);
			struct dirent *e;
			char q[900];

			while (sub && (e = readdir(sub))) {
				snprintf(q, sizeof(q), "%s/%s", p, e->d_name);
				unlink(q);
			}
			if (sub)
				closedir(sub);
			rmdir(p);
		}
	}
	closedir(dir);
}

/* Rewrites what would reach outside the harness: every "dev" / "file"
 * string becomes a file in the private directory (its name reduced to
 * [A-Za-z0-9._-], so no path escapes), every "port" in 1-65535 our own free
 * port (values outside stay, to exercise the checks), every parseable
 * "ip_address" a loopback address, every "size" at most 4 MiB. */
static inline void fuzz_json_sanitize(json_t *j)
{
	const char *k;
	json_t *v;
	size_t i;

	if (json_is_array(j)) {
		json_array_foreach(j, i, v)
			fuzz_json_sanitize(v);
		return;
	}
	if (!json_is_object(j))
		return;
	json_object_foreach(j, k, v) {
		if ((!strcmp(k, "dev") || !strcmp(k, "file")) &&
		    json_is_string(v)) {
			const char *s = json_string_value(v);
			char name[40], path[400];
			size_t n = 0;

			for (; *s && n < sizeof(name) - 1; s++)
				if ((*s >= 'a' && *s <= 'z') ||
				    (*s >= 'A' && *s <= 'Z') ||
				    (*s >= '0' && *s <= '9') || *s == '-' ||
				    *s == '_' || (*s == '.' && n > 0))
					name[n++] = *s;
			name[n] = 0;
			/* "" stays "" (the default file / a missing dev) */
			if (json_string_length(v) == 0)
				continue;
			snprintf(path, sizeof(path), "%s/%s", fuzz_dir,
				 n ? name : "x");
			json_string_set(v, path);
		} else if (!strcmp(k, "port") && json_is_integer(v)) {
			json_int_t p = json_integer_value(v);

			if (p >= 1 && p <= 65535)
				json_integer_set(v, fuzz_port);
		} else if (!strcmp(k, "ip_address") && json_is_string(v)) {
			const char *s = json_string_value(v);
			unsigned char buf[16];
			char tmp[64];
			size_t n = strlen(s);

			if (n >= 2 && s[0] == '[' && s[n - 1] == ']' &&
			    n - 2 < sizeof(tmp)) {
				memcpy(tmp, s + 1, n - 2);
				tmp[n - 2] = 0;
				s = tmp;
			}
			if (inet_pton(AF_INET, s, buf) == 1)
				json_string_set(v, "127.0.0.1");
			else if (inet_pton(AF_INET6, s, buf) == 1)
				json_string_set(v, "::1");
		} else if (!strcmp(k, "size") && json_is_integer(v)) {
			if (json_integer_value(v) > (json_int_t)FUZZ_SIZE_MAX)
				json_integer_set(v, FUZZ_SIZE_MAX);
		} else {
			fuzz_json_sanitize(v);
		}
	}
}

#endif
