/* The configuration as LIO's saveconfig.json (rtslib-fb's dump format:
 * sorted keys, 2-space indent) and saving it safely: <file>.temp, fsync,
 * rename, fsync of the directory, mode 0600, gzip'd backups of the previous
 * file under backup/ beside it. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "control/auth.h"
#include "control/alua.h"
#include "control/attrs.h"
#include "control/model.h"
#include "control/plugins.h"
#include "control/saveconfig.h"
#include "iscsi/target.h"
#include "util/log.h"

static json_t *attrs_json(const struct ctl_attr *tab, const void *obj)
{
	json_t *o = json_object();

	/* rtslib dumps writable attributes only (list_attributes(writable=
	 * True)); read-only ones are facts of the device, not settings */
	for (; tab->name; tab++)
		if (!tab->ro)
			json_object_set_new(o, tab->name,
					    json_integer(ctl_attr_get(tab, obj)));
	return o;
}

json_t *ctl_so_json(const struct ctl_so *so)
{
	json_t *o = json_object();

	json_object_set_new(o, "name", json_string(so->name));
	/* LIO's name: every tcmu handler is plugin "user" (plugins.c) */
	json_object_set_new(o, "plugin", json_string(
		ctl_plugin_lio_name(so->plugin)));
	json_object_set_new(o, "wwn", json_string(so->wwn));
	json_object_set_new(o, "attributes",
			    attrs_json(ctl_so_attrs, &so->lu->attrs));
	/* LIO's alua_tpgs, default_tg_pt_gp included (alua.c) */
	json_object_set_new(o, "alua_tpgs", ctl_alua_json(so->lu));
	{
		const struct ctl_plugin *pl = ctl_plugin_find(so->plugin);

		if (pl)
			pl->save(so, o);
	}
	return o;
}

static json_t *tpg_json(const struct iscsi_tpg *tpg)
{
	json_t *o = json_object(), *luns = json_array(), *portals = json_array();
	json_t *acls = json_array(), *params = json_object();
	const struct iscsi_tpg_lun *l;
	const struct iscsi_portal *p;
	const struct iscsi_acl *a;
	int k;

	json_object_set_new(o, "tag", json_integer(tpg->tag));
	json_object_set_new(o, "enable", json_boolean(tpg->enable));
	json_object_set_new(o, "attributes", attrs_json(ctl_tpg_attrs, &tpg->attrs));
	for (k = 0; k < ITK__COUNT; k++)
		json_object_set_new(params, iscsi_tpg_key_name(k),
				    json_string(tpg->params.val[k]));
	json_object_set_new(o, "parameters", params);
	ctl_auth_to_json(o, "chap_", &tpg->auth, true);
	/* issue 21; only when set, so files without it stay LIO's */
	if (tpg->allowed_networks.n)
		json_object_set_new(o, "allowed_networks",
				    ctl_netlist_to_json(&tpg->allowed_networks));
	list_for_each_entry(l, &tpg->luns, link) {
		const struct scsi_alua_gp *gp = atomic_load(&l->alua->gp);

		json_array_append_new(luns, json_pack("{s:i, s:s, s:s, s:s}",
			"index", (int)l->index, "storage_object", l->so_path,
			"alias", l->alias, "alua_tg_pt_gp_name",
			gp ? gp->name : "default_tg_pt_gp"));
	}
	json_object_set_new(o, "luns", luns);
	list_for_each_entry(p, &tpg->portals, link)
		json_array_append_new(portals, json_pack("{s:s, s:i, s:b, s:b}",
			"ip_address", p->ip, "port", (int)p->port, "iser", 0,
			"offload", 0));
	json_object_set_new(o, "portals", portals);
	list_for_each_entry(a, &tpg->acls, link) {
		json_t *ao = json_object(), *ml = json_array();
		const struct iscsi_mapped_lun *m;

		json_object_set_new(ao, "node_wwn", json_string(a->node_wwn));
		json_object_set_new(ao, "attributes",
				    attrs_json(ctl_acl_attrs, &a->attrs));
		if (a->tag[0])
			json_object_set_new(ao, "tag", json_string(a->tag));
		ctl_auth_to_json(ao, "chap_", &a->auth, true);
		if (a->allowed_networks.n)
			json_object_set_new(ao, "allowed_networks",
				ctl_netlist_to_json(&a->allowed_networks));
		list_for_each_entry(m, &a->mapped_luns, link)
			json_array_append_new(ml, json_pack("{s:i, s:i, s:b, s:s}",
				"index", (int)m->index, "tpg_lun", (int)m->tpg_lun,
				"write_protect", m->write_protect, "alias",
				m->alias));
		json_object_set_new(ao, "mapped_luns", ml);
		json_array_append_new(acls, ao);
	}
	json_object_set_new(o, "node_acls", acls);
	return o;
}

json_t *ctl_config_dump(void)
{
	json_t *root = json_object(), *sos = json_array(), *tgts = json_array();
	json_t *fabs = json_array();
	const struct iscsi_target *t;
	const struct ctl_so *so;

	list_for_each_entry(so, &ctl_sos, link)
		json_array_append_new(sos, ctl_so_json(so));
	list_for_each_entry(t, &iscsi_fabric.targets, link) {
		json_t *to = json_object(), *tpgs = json_array();
		const struct iscsi_tpg *tpg;

		json_object_set_new(to, "fabric", json_string("iscsi"));
		json_object_set_new(to, "wwn", json_string(t->wwn));
		list_for_each_entry(tpg, &t->tpgs, link)
			json_array_append_new(tpgs, tpg_json(tpg));
		json_object_set_new(to, "tpgs", tpgs);
		json_array_append_new(tgts, to);
	}
	if (iscsi_fabric.discovery_enable_auth ||
	    iscsi_fabric.discovery_auth.userid[0]) {
		const struct iscsi_auth *a = &iscsi_fabric.discovery_auth;

		json_t *fo = json_pack("{s:s, s:b}", "name", "iscsi",
				       "discovery_enable_auth",
				       iscsi_fabric.discovery_enable_auth);

		ctl_auth_to_json(fo, "discovery_", a, false);
		json_array_append_new(fabs, fo);
	}
	json_object_set_new(root, "storage_objects", sos);
	json_object_set_new(root, "targets", tgts);
	json_object_set_new(root, "fabric_modules", fabs);
	return root;
}

static int fsync_dir(const char *path)
{
	char buf[PATH_MAX];
	int fd, rc = 0;

	snprintf(buf, sizeof(buf), "%s", path);
	fd = open(dirname(buf), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fsync(fd))
		rc = -errno;
	close(fd);
	return rc;
}

static int mkdirs(const char *dir)
{
	char buf[PATH_MAX], *p;

	snprintf(buf, sizeof(buf), "%s", dir);
	for (p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(buf, 0700) && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, 0700) && errno != EEXIST)
		return -errno;
	return 0;
}

static char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long n;

	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 &&
	    fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)n + 1))) {
		*len = fread(buf, 1, (size_t)n, f);
		buf[*len] = 0;
	}
	fclose(f);
	return buf;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Keep the newest `keep` backups (names sort by time). */
static void prune_backups(const char *bdir, unsigned keep)
{
	DIR *d = opendir(bdir);
	struct dirent *e;
	char **names = NULL;
	size_t n = 0, i;

	if (!d)
		return;
	while ((e = readdir(d))) {
		char **nn;

		if (strncmp(e->d_name, "saveconfig-", 11))
			continue;
		nn = realloc(names, (n + 1) * sizeof(*names));
		if (!nn)
			break;
		names = nn;
		names[n++] = strdup(e->d_name);
	}
	closedir(d);
	qsort(names, n, sizeof(*names), cmp_str);
	for (i = 0; i < n; i++) {
		if (names[i] && i + keep < n) {
			char p[PATH_MAX];

			snprintf(p, sizeof(p), "%s/%s", bdir, names[i]);
			unlink(p);
		}
		free(names[i]);
	}
	free(names);
}

static void backup_name(char *path, size_t n, const char *bdir,
			const char *stamp, unsigned i)
{
	if (i == 0)
		snprintf(path, n, "%s/saveconfig-%s-json", bdir, stamp);
	else
		snprintf(path, n, "%s/saveconfig-%s.%03u-json", bdir, stamp, i);
}

/* Backup of the current file, unless it equals the newest backup. LIO keeps
 * gzip'd copies; we keep plain JSON named the same way minus .gz, so a
 * shell user can read them directly. */
static void backup_old(const char *file, unsigned keep, char *bdir,
		       size_t bdirlen)
{
	char dirbuf[PATH_MAX], path[PATH_MAX], stamp[64];
	size_t oldlen = 0;
	char *old = read_file(file, &oldlen);
	time_t now = time(NULL);
	struct tm tm;
	unsigned i;
	int last = -1;
	FILE *f;

	snprintf(dirbuf, sizeof(dirbuf), "%s", file);
	snprintf(bdir, bdirlen, "%s/backup", dirname(dirbuf));
	if (!old)
		return;
	if (keep == 0 || mkdirs(bdir)) {
		free(old);
		return;
	}
	localtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%d-%H:%M:%S", &tm);
	/* Saves within one second must not lose the previous file: a clash
	 * gets ".NNN" above the highest taken, which still sorts after the
	 * plain name and before the next second (prune_backups keeps the
	 * newest by name, so a freed lower name must not be reused). */
	for (i = 0; i < 1000; i++) {
		backup_name(path, sizeof(path), bdir, stamp, i);
		if (access(path, F_OK) == 0)
			last = (int)i;
	}
	f = NULL;
	if (last < 999) {
		int fd;

		backup_name(path, sizeof(path), bdir, stamp, (unsigned)(last + 1));
		/* 0600 from the start: the file holds CHAP secrets */
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		f = fd >= 0 ? fdopen(fd, "w") : NULL;
		if (fd >= 0 && !f)
			close(fd);
	}
	if (!f)
		log_warn("saveconfig: no backup of %s: %s", file,
			 last < 999 ? strerror(errno) : "too many saves this second");
	if (f) {
		fwrite(old, 1, oldlen, f);
		fclose(f);
		chmod(path, 0600);
	}
	free(old);
	prune_backups(bdir, keep);
}

int ctl_config_save(const char *file, unsigned max_backups, char *bdir,
		    size_t bdirlen, char *err, size_t errlen)
{
	char tmp[PATH_MAX], dirbuf[PATH_MAX];
	json_t *root = ctl_config_dump();
	char *text = json_dumps(root, JSON_SORT_KEYS | JSON_INDENT(2));
	size_t len, oldlen = 0;
	char *old;
	int fd, rc = 0;

	json_decref(root);
	if (!text)
		return -ENOMEM;
	len = strlen(text);
	snprintf(dirbuf, sizeof(dirbuf), "%s", file);
	rc = mkdirs(dirname(dirbuf));
	if (rc) {
		snprintf(err, errlen, "Cannot create the directory of %s: %s",
			 file, strerror(-rc));
		free(text);
		return rc;
	}
	{
		char d2[PATH_MAX];

		snprintf(d2, sizeof(d2), "%s", file);
		snprintf(bdir, bdirlen, "%s/backup", dirname(d2));
	}
	old = read_file(file, &oldlen);
	if (old && (oldlen != len + 1 || memcmp(old, text, len)))
		backup_old(file, max_backups, bdir, bdirlen);
	free(old);
	snprintf(tmp, sizeof(tmp), "%s.temp", file);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		rc = -errno;
		goto fail;
	}
	/* Never a broken file: the new one is complete and on disk before it
	 * takes the old one's name. */
	if (fchmod(fd, 0600) || write(fd, text, len) != (ssize_t)len ||
	    write(fd, "\n", 1) != 1 || fsync(fd)) {
		rc = -errno;
		close(fd);
		unlink(tmp);
		goto fail;
	}
	close(fd);
	if (rename(tmp, file)) {
		rc = -errno;
		unlink(tmp);
		goto fail;
	}
	fsync_dir(file);
	free(text);
	return 0;
fail:
	snprintf(err, errlen, "Could not save configuration to %s: %s", file,
		 strerror(-rc));
	free(text);
	return rc;
}
