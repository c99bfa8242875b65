/* The node tree utargetcli shows and walks, rebuilt from the daemon's
 * get_config; path lookup after configshell's get_node; LIO's status texts
 * (targetcli-fb's ui_*.py summary() strings; the golden transcripts in
 * tests/integration/data/ and docs/utargetcli.md show them). */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

const char *json_str(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	return json_is_string(v) ? json_string_value(v) : NULL;
}

long long json_num(json_t *o, const char *key, long long dflt)
{
	json_t *v = json_object_get(o, key);

	if (json_is_integer(v))
		return json_integer_value(v);
	if (json_is_boolean(v))
		return json_is_true(v);
	if (json_is_string(v)) {
		char *end;
		long long n = strtoll(json_string_value(v), &end, 0);

		if (!*end && end != json_string_value(v))
			return n;
	}
	return dflt;
}

bool json_flag(json_t *o, const char *key)
{
	return json_num(o, key, 0) != 0;
}

void tree_free(struct node *n)
{
	if (!n)
		return;
	for (size_t i = 0; i < n->nkids; i++)
		tree_free(n->kids[i]);
	free(n->kids);
	free(n->name);
	free(n->path);
	free(n);
}

static struct node *add(struct node *parent, enum node_type type,
			json_t *obj, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static struct node *add(struct node *parent, enum node_type type,
			json_t *obj, const char *fmt, ...)
{
	struct node *n = calloc(1, sizeof(*n));
	va_list ap;
	int r;

	if (!n)
		abort();
	va_start(ap, fmt);
	r = vasprintf(&n->name, fmt, ap);
	va_end(ap);
	if (r < 0)
		abort();
	n->type = type;
	n->obj = obj;
	n->parent = parent;
	if (parent) {
		struct node **k = realloc(parent->kids, (parent->nkids + 1) *
					  sizeof(*k));

		if (!k)
			abort();
		parent->kids = k;
		k[parent->nkids++] = n;
		r = asprintf(&n->path, "%s/%s",
			     parent->parent ? parent->path : "", n->name);
		if (r < 0)
			abort();
		n->plugin = parent->plugin;
		n->so_name = parent->so_name;
		n->wwn = parent->wwn;
		n->tag = parent->tag;
		n->node_wwn = parent->node_wwn;
		n->tpg = parent->tpg;
	} else {
		n->path = strdup("/");
		if (!n->path)
			abort();
	}
	return n;
}

static int kid_cmp(const void *a, const void *b)
{
	const struct node *x = *(const struct node *const *)a;
	const struct node *y = *(const struct node *const *)b;

	return cli_name_cmp(x->name, y->name);
}

static void sort_tree(struct node *n)
{
	if (n->nkids > 1)
		qsort(n->kids, n->nkids, sizeof(*n->kids), kid_cmp);
	for (size_t i = 0; i < n->nkids; i++)
		sort_tree(n->kids[i]);
}

static const char *const plugins[] = { "block", "fileio", "pscsi",
				       "ramdisk", "user:rbd" };

/* The daemon names each object's node under /backstores (get_config
 * live: LIO saves tcmu objects as plugin "user", shown under user:rbd). */
static bool so_of_plugin(json_t *so, const char *node_plugin)
{
	const char *bs = json_str(so, "backstore");

	return bs && !strcmp(bs, node_plugin);
}

static void build_tpg(struct node *tpgn, json_t *tpg)
{
	struct node *acls, *luns, *portals;
	json_t *v;
	size_t i, j;

	acls = add(tpgn, N_ACLS, tpg, "acls");
	json_array_foreach(json_object_get(tpg, "node_acls"), i, v) {
		const char *nw = json_str(v, "node_wwn");
		struct node *an;
		json_t *m;

		if (!nw)
			continue;
		an = add(acls, N_ACL, v, "%s", nw);
		an->node_wwn = nw;
		json_array_foreach(json_object_get(v, "mapped_luns"), j, m) {
			struct node *mn;
			long idx = (long)json_num(m, "index", 0);

			mn = add(an, N_MLUN, m, "mapped_lun%ld", idx);
			mn->index = idx;
		}
	}
	luns = add(tpgn, N_LUNS, tpg, "luns");
	json_array_foreach(json_object_get(tpg, "luns"), i, v) {
		long idx = (long)json_num(v, "index", 0);
		struct node *ln = add(luns, N_LUN, v, "lun%ld", idx);

		ln->index = idx;
	}
	portals = add(tpgn, N_PORTALS, tpg, "portals");
	json_array_foreach(json_object_get(tpg, "portals"), i, v) {
		const char *ip = json_str(v, "ip_address");
		long port = (long)json_num(v, "port", 3260);
		struct node *pn;

		if (!ip)
			continue;
		/* IPv6 portals are shown bracketed, as LIO names them. */
		if (strchr(ip, ':') && ip[0] != '[')
			pn = add(portals, N_PORTAL, v, "[%s]:%ld", ip, port);
		else
			pn = add(portals, N_PORTAL, v, "%s:%ld", ip, port);
		pn->ip = ip;
		pn->index = port;
	}
}

static struct node *build(json_t *cfg)
{
	struct node *root = add(NULL, N_ROOT, cfg, "/");
	struct node *bs = add(root, N_BACKSTORES, NULL, "backstores");
	struct node *iscsi;
	json_t *v;
	size_t i, j;

	for (size_t p = 0; p < sizeof(plugins) / sizeof(*plugins); p++) {
		struct node *pn = add(bs, N_PLUGIN, NULL, "%s", plugins[p]);

		pn->plugin = plugins[p];
		json_array_foreach(json_object_get(cfg, "storage_objects"),
				   i, v) {
			const char *pl = json_str(v, "plugin");
			const char *nm = json_str(v, "name");
			struct node *sn, *alua;
			json_t *gps = json_object_get(v, "alua_tpgs"), *g;

			if (!pl || !nm || !so_of_plugin(v, plugins[p]))
				continue;
			sn = add(pn, N_SO, v, "%s", nm);
			sn->so_name = nm;
			alua = add(sn, N_ALUA, v, "alua");
			if (json_array_size(gps)) {
				json_array_foreach(gps, j, g)
					if (json_str(g, "name"))
						add(alua, N_ALUA_GP, g, "%s",
						    json_str(g, "name"));
			} else {
				/* LIO gives every object this group. */
				add(alua, N_ALUA_GP, NULL, "default_tg_pt_gp");
			}
		}
	}
	iscsi = add(root, N_ISCSI, NULL, "iscsi");
	json_array_foreach(json_object_get(cfg, "targets"), i, v) {
		const char *wwn = json_str(v, "wwn");
		const char *fabric = json_str(v, "fabric");
		struct node *tn;
		json_t *tpg;

		if (!wwn || (fabric && strcmp(fabric, "iscsi")))
			continue;
		tn = add(iscsi, N_TARGET, v, "%s", wwn);
		tn->wwn = wwn;
		json_array_foreach(json_object_get(v, "tpgs"), j, tpg) {
			unsigned tag = (unsigned)json_num(tpg, "tag", 1);
			struct node *gn = add(tn, N_TPG, tpg, "tpg%u", tag);

			gn->tag = tag;
			gn->tpg = tpg;
			build_tpg(gn, tpg);
		}
	}
	sort_tree(root);
	return root;
}

int tree_refresh(struct shell *sh)
{
	/* live: with what the saved file leaves out (a block device's size) */
	json_t *cfg, *p = json_pack("{s:b}", "live", 1);
	int ret = ut_call(sh->ut, "get_config", p, &cfg);

	json_decref(p);
	if (ret)
		return ret;
	tree_free(sh->root);
	json_decref(sh->config);
	sh->config = cfg;
	sh->root = build(cfg);
	sh->changed = false;
	return 0;
}

static struct node *child_exact(struct node *n, const char *name, size_t len)
{
	for (size_t i = 0; i < n->nkids; i++)
		if (strlen(n->kids[i]->name) == len &&
		    !strncmp(n->kids[i]->name, name, len))
			return n->kids[i];
	return NULL;
}

/* The older targetcli words of the LIO wiki page, accepted beside today's:
 * /backstores/iblock (= block), rd_mcp and rd_dr (= ramdisk: LIO's memory
 * copy and "direct" ramdisks are one ramdisk here), and TPGs addressed as
 * tpgtN (= tpgN). `ls` and the prompt show today's names. */
const char *const tree_so_aliases[TREE_SO_ALIASES][2] = {
	{ "iblock", "block" }, { "rd_mcp", "ramdisk" }, { "rd_dr", "ramdisk" },
};

const char *tree_alias(const struct node *n, const char *name, size_t len,
		       char *buf, size_t blen)
{
	if (n->type == N_BACKSTORES) {
		for (size_t i = 0; i < TREE_SO_ALIASES; i++)
			if (strlen(tree_so_aliases[i][0]) == len &&
			    !strncmp(name, tree_so_aliases[i][0], len))
				return tree_so_aliases[i][1];
	} else if (n->type == N_TARGET && len > 4 && len < 10 &&
		   !strncmp(name, "tpgt", 4) &&
		   strspn(name + 4, "0123456789") == len - 4) {
		snprintf(buf, blen, "tpg%.*s", (int)(len - 4), name + 4);
		return buf;
	}
	return NULL;
}

static struct node *child(struct node *n, const char *name, size_t len)
{
	struct node *c = child_exact(n, name, len);
	char buf[16];
	const char *a;

	if (!c && (a = tree_alias(n, name, len, buf, sizeof(buf))))
		c = child_exact(n, a, strlen(a));
	return c;
}

struct node *tree_lookup(struct shell *sh, struct node *from,
			 const char *path, char *err, size_t errlen)
{
	char buf[PATH_MAX];
	const char *p;
	struct node *n = from;
	size_t o = 0;

	if (!path || !*path)
		path = ".";
	if (path[0] == '@') {
		json_t *bm = json_object_get(
			json_object_get(sh->prefs, "bookmarks"), path + 1);

		if (!json_is_string(bm)) {
			snprintf(err, errlen, "No such bookmark %s", path + 1);
			return NULL;
		}
		path = json_string_value(bm);
	}
	/* Squeeze repeated slashes (configshell does). */
	for (p = path; *p && o < sizeof(buf) - 1; p++)
		if (!(*p == '/' && o && buf[o - 1] == '/'))
			buf[o++] = *p;
	buf[o] = '\0';
	p = buf;
	if (*p == '/') {
		n = sh->root;
		while (*p == '/')
			p++;
	}
	while (*p) {
		const char *e = strchr(p, '/');
		size_t l = e ? (size_t)(e - p) : strlen(p);
		struct node *c;

		if (l == 1 && p[0] == '.') {
			c = n;
		} else if (l == 2 && !strncmp(p, "..", 2)) {
			c = n->parent ? n->parent : n;
		} else {
			c = child(n, p, l);
			if (!c) {
				snprintf(err, errlen, "No such path %s/%.*s",
					 n->parent ? n->path : "", (int)l, p);
				return NULL;
			}
		}
		n = c;
		p += l;
		while (*p == '/')
			p++;
	}
	return n;
}

struct node *tree_cwd(struct shell *sh)
{
	char err[256], path[PATH_MAX];
	struct node *n;

	snprintf(path, sizeof(path), "%s", sh->cwd);
	/* The current node may be gone (deleted elsewhere): go up. */
	for (;;) {
		char *s;

		n = tree_lookup(sh, sh->root, path, err, sizeof(err));
		if (n)
			break;
		s = strrchr(path, '/');
		if (!s || s == path) {
			n = sh->root;
			break;
		}
		*s = '\0';
	}
	snprintf(sh->cwd, sizeof(sh->cwd), "%s", n->path);
	return n;
}

static json_t *find_so(struct shell *sh, const char *path)
{
	json_t *v;
	size_t i;
	char buf[512];

	json_array_foreach(json_object_get(sh->config, "storage_objects"), i,
			   v) {
		snprintf(buf, sizeof(buf), "/backstores/%s/%s",
			 json_str(v, "plugin") ? json_str(v, "plugin") : "",
			 json_str(v, "name") ? json_str(v, "name") : "");
		if (path && !strcmp(buf, path))
			return v;
	}
	return NULL;
}

static bool so_in_use(struct shell *sh, json_t *so)
{
	char buf[512];
	json_t *t, *g, *l;
	size_t i, j, k;

	snprintf(buf, sizeof(buf), "/backstores/%s/%s",
		 json_str(so, "plugin"), json_str(so, "name"));
	json_array_foreach(json_object_get(sh->config, "targets"), i, t)
		json_array_foreach(json_object_get(t, "tpgs"), j, g)
			json_array_foreach(json_object_get(g, "luns"), k, l)
				if (json_str(l, "storage_object") &&
				    !strcmp(json_str(l, "storage_object"), buf))
					return true;
	return false;
}

static json_t *tpg_lun(json_t *tpg, long index)
{
	json_t *l;
	size_t i;

	json_array_foreach(json_object_get(tpg, "luns"), i, l)
		if (json_num(l, "index", -1) == index)
			return l;
	return NULL;
}

static bool has(json_t *o, const char *key)
{
	const char *s = json_str(o, key);

	return s && *s;
}

void node_summary(struct shell *sh, struct node *n, char *buf, size_t len,
		  int *health)
{
	json_t *o = n->obj, *v;
	bool gen, auth;

	buf[0] = '\0';
	*health = -1;
	switch (n->type) {
	case N_ROOT:
	case N_BACKSTORES:
		break;
	case N_PLUGIN:
		snprintf(buf, len, "Storage Objects: %zu", n->nkids);
		break;
	case N_SO: {
		/* the plugin's own words, from the daemon (plugins.c) */
		const char *st = so_in_use(sh, o) ? "activated" : "deactivated";
		const char *sum = json_str(o, "summary");

		*health = 1;
		snprintf(buf, len, "%s %s", sum ? sum : "", st);
		break;
	}
	case N_ALUA:
		snprintf(buf, len, "ALUA Groups: %zu", n->nkids);
		break;
	case N_ALUA_GP: {
		/* targetcli-fb's UIALUATargetPortGroup.summary names */
		json_int_t st = o ? json_integer_value(
			json_object_get(o, "alua_access_state")) : 0;
		const char *name = st == 0 ? "Active/optimized" :
				   st == 1 ? "Active/non-optimized" :
				   st == 2 ? "Standby" : st == 3 ? "Unavailable" :
				   st == 4 ? "LBA Dependent" : st == 14 ? "Offline" :
				   st == 15 ? "Transitioning" : "Unknown";

		snprintf(buf, len, "ALUA state: %s", name);
		*health = 1;
		break;
	}
	case N_ISCSI: {
		json_t *fm;
		size_t i;
		bool on = false, mutual = false, ok = false;

		json_array_foreach(json_object_get(sh->config,
						   "fabric_modules"), i, fm) {
			if (!json_str(fm, "name") ||
			    strcmp(json_str(fm, "name"), "iscsi"))
				continue;
			on = json_flag(fm, "discovery_enable_auth");
			mutual = has(fm, "discovery_mutual_userid") &&
				 has(fm, "discovery_mutual_password");
			ok = has(fm, "discovery_userid") &&
			     has(fm, "discovery_password");
		}
		if (on) {
			*health = ok;
			snprintf(buf, len, "%s disc auth, Targets: %zu",
				 mutual ? "mutual" : "1-way", n->nkids);
		} else {
			snprintf(buf, len, "Targets: %zu", n->nkids);
		}
		break;
	}
	case N_TARGET:
		snprintf(buf, len, "TPGs: %zu", n->nkids);
		break;
	case N_TPG: {
		json_t *at = json_object_get(o, "attributes");

		if (!json_flag(o, "enable")) {
			snprintf(buf, len, "disabled");
			*health = 0;
			break;
		}
		gen = json_flag(at, "generate_node_acls");
		auth = json_num(at, "authentication", 1) != 0;
		if (!auth) {
			snprintf(buf, len, "%s, %s",
				 gen ? "gen-acls" : "no-gen-acls",
				 gen && (has(o, "chap_userid") ||
					 has(o, "chap_password")) ?
				 "tpg-auth (optional)" : "no-auth");
			if (gen)
				*health = 1;
		} else if (!gen) {
			snprintf(buf, len, "no-gen-acls, auth per-acl");
		} else {
			bool mutual = has(o, "chap_mutual_userid") &&
				      has(o, "chap_mutual_password");

			*health = has(o, "chap_userid") &&
				  has(o, "chap_password");
			snprintf(buf, len, "gen-acls, tpg-auth, %s auth",
				 mutual ? "mutual" : "1-way");
		}
		break;
	}
	case N_ACLS:
		snprintf(buf, len, "ACLs: %zu", n->nkids);
		break;
	case N_ACL: {
		json_t *at = json_object_get(n->tpg, "attributes");
		char pre[64] = "";

		if (!json_num(at, "authentication", 1)) {
			/* credentials set but not required: an initiator
			 * offering AuthMethod=None gets in (LIO's rule) */
			if (has(o, "chap_userid") || has(o, "chap_password"))
				snprintf(pre, sizeof(pre),
					 "%s auth (optional), ",
					 has(o, "chap_mutual_userid") &&
					 has(o, "chap_mutual_password") ?
					 "mutual" : "1-way");
		} else {
			if (json_flag(at, "generate_node_acls")) {
				snprintf(pre, sizeof(pre), "auth via tpg, ");
			} else {
				*health = has(o, "chap_userid") &&
					  has(o, "chap_password");
				/* required but not set: nobody gets in, and
				 * "1-way auth" would claim a CHAP that is not
				 * there */
				snprintf(pre, sizeof(pre), "%s, ",
					 !*health ? "no CHAP set" :
					 has(o, "chap_mutual_userid") &&
					 has(o, "chap_mutual_password") ?
					 "mutual auth" : "1-way auth");
			}
		}
		snprintf(buf, len, "%sMapped LUNs: %zu", pre, n->nkids);
		break;
	}
	case N_MLUN: {
		long tl = (long)json_num(o, "tpg_lun", -1);
		json_t *l = tpg_lun(n->tpg, tl);
		json_t *so = l ? find_so(sh, json_str(l, "storage_object")) :
				 NULL;

		if (!so) {
			snprintf(buf, len, "BROKEN LUN LINK");
			*health = 0;
			break;
		}
		*health = 1;
		snprintf(buf, len, "lun%ld %s/%s (%s)", tl,
			 json_str(so, "plugin"), json_str(so, "name"),
			 json_flag(o, "write_protect") ? "ro" : "rw");
		break;
	}
	case N_LUNS:
		snprintf(buf, len, "LUNs: %zu", n->nkids);
		break;
	case N_LUN: {
		json_t *so = find_so(sh, json_str(o, "storage_object"));
		const char *gp = json_str(o, "alua_tg_pt_gp_name");
		size_t l;

		if (!so) {
			snprintf(buf, len, "BROKEN STORAGE LINK");
			*health = 0;
			break;
		}
		*health = 1;
		snprintf(buf, len, "%s/%s", json_str(so, "plugin"),
			 json_str(so, "name"));
		l = strlen(buf);
		if (has(so, "dev") && l < len)
			snprintf(buf + l, len - l, " (%s)", json_str(so, "dev"));
		else if (has(so, "config") && l < len)
			snprintf(buf + l, len - l, " (%s)", json_str(so, "config"));
		l = strlen(buf);
		if (l < len)
			snprintf(buf + l, len - l, " (%s)",
				 gp && *gp ? gp : "default_tg_pt_gp");
		break;
	}
	case N_PORTALS:
		snprintf(buf, len, "Portals: %zu", n->nkids);
		break;
	case N_PORTAL:
		*health = 1;
		if (json_flag(o, "iser"))
			snprintf(buf, len, "iser");
		else if (json_flag(o, "offload"))
			snprintf(buf, len, "offload");
		break;
	case N_TYPES:
		break;
	}
	/* initiator address ACLs (issue 21): "..., networks: 127.0.0.0/8" */
	if ((n->type == N_TPG || n->type == N_ACL) &&
	    json_array_size(json_object_get(o, "allowed_networks"))) {
		size_t i, l = strlen(buf);

		json_array_foreach(json_object_get(o, "allowed_networks"), i, v) {
			if (l + 1 >= len)
				break;
			snprintf(buf + l, len - l, "%s%s", i ? "," :
				 l ? ", networks: " : "networks: ",
				 json_string_value(v) ? json_string_value(v) : "");
			l = strlen(buf);
		}
	}
}
