/* utargetcli's configuration groups: `get` and `set` on attribute,
 * parameter, auth, discovery_auth and global (targetcli's words; the
 * netacl group, initiator address ACLs, is ours: issue 21; the
 * values and their descriptions come from the daemon's describe tables). */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

size_t node_groups(struct node *n, const char **out, size_t max)
{
	size_t k = 0;

	out[k++] = "global";
	switch (n->type) {
	case N_SO:
		out[k++] = "attribute";
		break;
	case N_TPG:
	case N_ACL:
		out[k++] = "attribute";
		out[k++] = "auth";
		out[k++] = "netacl";
		out[k++] = "parameter";
		break;
	case N_ISCSI:
		out[k++] = "discovery_auth";
		break;
	case N_ALUA_GP:
	case N_LUN:
		out[k++] = "alua";
		break;
	default:
		break;
	}
	(void)max;
	return k;
}

static bool has_group(struct node *n, const char *g)
{
	const char *gs[8];
	size_t k = node_groups(n, gs, 8);

	for (size_t i = 0; i < k; i++)
		if (!strcmp(gs[i], g))
			return true;
	return false;
}

struct gparam {
	char *name;
	const char *type;	/* for messages and completion */
	char *desc;
	bool ro;
	char *value;		/* NULL: not loaded */
};

struct gset {
	struct gparam *p;
	size_t n;
};

static void gset_free(struct gset *g)
{
	for (size_t i = 0; i < g->n; i++) {
		free(g->p[i].name);
		free(g->p[i].desc);
		free(g->p[i].value);
	}
	free(g->p);
	memset(g, 0, sizeof(*g));
}

static struct gparam *gset_add(struct gset *g, const char *name,
			       const char *type, const char *desc, bool ro)
{
	struct gparam *p = realloc(g->p, (g->n + 1) * sizeof(*p));

	if (!p)
		abort();
	g->p = p;
	p = &g->p[g->n++];
	p->name = strdup(name);
	p->type = type;
	p->desc = strdup(desc ? desc : "");
	p->ro = ro;
	p->value = NULL;
	return p;
}

static struct gparam *gset_find(struct gset *g, const char *name)
{
	for (size_t i = 0; i < g->n; i++)
		if (!strcmp(g->p[i].name, name))
			return &g->p[i];
	return NULL;
}

static int gp_cmp(const void *a, const void *b)
{
	return strcmp(((const struct gparam *)a)->name,
		      ((const struct gparam *)b)->name);
}

static char *value_text(json_t *v)
{
	char *s;

	if (json_is_string(v))
		return strdup(json_string_value(v));
	if (json_is_true(v))
		return strdup("1");
	if (json_is_false(v))
		return strdup("0");
	if (!v || json_is_null(v))
		return strdup("");
	s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
	return s ? s : strdup("");
}

static const char *const auth_names[] = { "userid", "password",
					  "mutual_userid", "mutual_password" };

/* The LIO wiki's older spellings of the mutual CHAP parameters
 * (userid_mutual, password_mutual), accepted in get and set of the auth
 * groups; get lists today's names. */
static const char *param_name(const char *group, const char *key)
{
	if (strcmp(group, "auth") && strcmp(group, "discovery_auth"))
		return key;
	if (!strcmp(key, "userid_mutual"))
		return "mutual_userid";
	if (!strcmp(key, "password_mutual"))
		return "mutual_password";
	return key;
}

static json_t *netacl_params(struct node *n)
{
	return n->type == N_TPG ?
		json_pack("{s:s?, s:i}", "wwn", n->wwn, "tag", (int)n->tag) :
		json_pack("{s:s?, s:i, s:s?}", "wwn", n->wwn, "tag",
			  (int)n->tag, "node_wwn", n->node_wwn);
}

/* "a,b, c" -> ["a", "b", "c"]; "" and "none" -> []. */
static json_t *netacl_list(const char *v)
{
	json_t *arr = json_array();
	char *copy = strdup(v ? v : ""), *save = NULL, *tok;

	if (copy && strcmp(copy, "none"))
		for (tok = strtok_r(copy, ", ", &save); tok;
		     tok = strtok_r(NULL, ", ", &save))
			json_array_append_new(arr, json_string(tok));
	free(copy);
	return arr;
}

/* The LUN's secondary target port state, LIO's configfs files beside
 * alua_tg_pt_gp (rtslib-fb's LUN.alua_tg_pt_offline / _status /
 * _write_md); the daemon's values (lun.get_alua), not saved. */
static int lun_alua_secondary(struct shell *sh, struct node *n,
			      bool want_values, struct gset *g)
{
	static const char *const names[] = { "alua_tg_pt_offline",
		"alua_tg_pt_status", "alua_tg_pt_write_md" };
	static const char *const descs[] = {
		"1: this LUN's target port is offline (its own, secondary "
		"state): every command through it is refused, NOT READY 04/12.",
		"Why the port's secondary state last changed: 0 none, 1 by SET "
		"TARGET PORT GROUPS, 2 implicitly.",
		"LIO writes the secondary state to /var/target/alua; stored only." };
	json_t *p, *vals = NULL;
	size_t first = g->n;
	int ret;

	for (size_t i = 0; i < 3; i++)
		gset_add(g, names[i], "number", descs[i], false);
	if (!want_values)
		return 0;
	p = json_pack("{s:s?, s:i, s:i}", "wwn", n->wwn, "tag", (int)n->tag,
		      "lun", (int)n->index);
	ret = ut_call(sh->ut, "lun.get_alua", p, &vals);
	json_decref(p);
	if (ret)
		return ret;
	for (size_t i = 0; i < 3; i++)
		g->p[first + i].value = value_text(json_object_get(vals,
								   names[i]));
	json_decref(vals);
	return 0;
}

/* Loads the definitions (and values when want_values) of a group. */
static int group_load(struct shell *sh, struct node *n, const char *group,
		      bool want_values, struct gset *g)
{
	json_t *vals = NULL, *table = NULL, *e;
	const char *kind = NULL, *k;
	size_t i;
	int ret = 0;
	char d[256];

	memset(g, 0, sizeof(*g));
	if (!strcmp(group, "global")) {
		for (const struct gpref *p = cli_globals; p->name; p++) {
			struct gparam *gp = gset_add(g, p->name, p->type,
						     p->desc, false);
			char buf[512];

			pref_text(sh, p, buf, sizeof(buf));
			gp->value = strdup(buf);
		}
		return 0;
	}
	if (!strcmp(group, "auth") || !strcmp(group, "discovery_auth")) {
		bool disc = group[0] == 'd';

		if (disc) {
			gset_add(g, "enable", "bool",
				 "If true, initiators must authenticate with "
				 "CHAP in discovery sessions.", false);
			ret = ut_discovery_auth_get(sh->ut, &vals);
		} else if (n->type == N_TPG) {
			ret = ut_tpg_get_auth(sh->ut, n->wwn, n->tag, &vals);
		} else {
			ret = ut_acl_get_auth(sh->ut, n->wwn, n->tag,
					      n->node_wwn, &vals);
		}
		for (i = 0; i < 4; i++) {
			snprintf(d, sizeof(d), "The %s %s parameter.",
				 auth_names[i], group);
			gset_add(g, auth_names[i], "string", d, false);
		}
		if (!disc)
			gset_add(g, "authenticate_target", "bool",
				 "Whether the target authenticates itself to "
				 "the initiator (mutual CHAP).", true);
		if (ret)
			goto out;
		for (i = 0; i < g->n; i++) {
			if (!strcmp(g->p[i].name, "authenticate_target")) {
				bool m = json_str(vals, "mutual_userid") &&
					 *json_str(vals, "mutual_userid") &&
					 json_str(vals, "mutual_password") &&
					 *json_str(vals, "mutual_password");

				g->p[i].value = strdup(m ? "1" : "0");
			} else if (!strcmp(g->p[i].name, "enable")) {
				/* One rule for booleans: the target's settings
				 * read 1 / 0, as LIO's configfs holds them and
				 * the wiki shows ("Parameter enable is now
				 * '1'."); the shell's own preferences (global)
				 * read true / false, as targetcli-fb's do. */
				g->p[i].value = strdup(
					json_flag(vals, "enable") ? "1" : "0");
			} else {
				g->p[i].value = value_text(
					json_object_get(vals, g->p[i].name));
			}
		}
		goto out;
	}
	if (!strcmp(group, "netacl")) {
		/* allowed_networks, shown and set as one comma-separated
		 * list ("" or "none": everyone) */
		json_t *p = netacl_params(n), *arr;
		char buf[4096] = "";
		size_t len = 0;

		gset_add(g, "allowed_networks", "string",
			 "Initiator source networks (CIDRs, comma-separated) "
			 "that may log in; empty: every address.", false);
		if (!want_values) {
			json_decref(p);
			return 0;
		}
		ret = ut_call(sh->ut, n->type == N_TPG ?
			      "tpg.get_allowed_networks" :
			      "acl.get_allowed_networks", p, &vals);
		json_decref(p);
		if (ret)
			goto out;
		arr = json_object_get(vals, "allowed_networks");
		json_array_foreach(arr, i, e)
			len += (size_t)snprintf(buf + len, len < sizeof(buf) ?
						sizeof(buf) - len : 0, "%s%s",
						i ? "," : "",
						json_string_value(e) ?
						json_string_value(e) : "");
		g->p[0].value = strdup(buf);
		goto out;
	}
	if (!strcmp(group, "alua") && n->type == N_LUN) {
		/* LIO's one LUN setting of the group: which target port group
		 * of its storage object this LUN's port is in */
		struct gparam *gp = gset_add(g, "alua_tg_pt_gp_name", "string",
			"The ALUA target port group (of the storage object) "
			"this LUN's target port is in.", false);

		gp->value = strdup(json_str(n->obj, "alua_tg_pt_gp_name") ?
				   json_str(n->obj, "alua_tg_pt_gp_name") :
				   "default_tg_pt_gp");
		ret = lun_alua_secondary(sh, n, want_values, g);
		goto out;
	}
	if (!strcmp(group, "alua")) {
		json_t *p = json_pack("{s:s?, s:s?, s:s}", "plugin",
				      n->parent->parent->plugin, "name",
				      n->parent->parent->so_name, "group",
				      n->name);

		kind = "alua";
		ret = ut_call(sh->ut, "alua.get_attributes", p, &vals);
		json_decref(p);
		if (ret)
			goto out;
		/* members is a list; shown as its paths, comma-separated */
		if (json_is_array(json_object_get(vals, "members"))) {
			json_t *m, *mm = json_object_get(vals, "members");
			size_t mi;
			char buf[1024] = "";

			json_array_foreach(mm, mi, m)
				snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf),
					 "%s%s", mi ? "," : "",
					 json_string_value(m) ?: "");
			json_object_set_new(vals, "members", json_string(buf));
		}
	} else if (!strcmp(group, "attribute")) {
		kind = n->type == N_SO ? "backstore" :
		       n->type == N_TPG ? "tpg" : "acl";
		{
			if (n->type == N_SO)
				ret = ut_backstore_get_attributes(
					sh->ut, n->plugin, n->so_name, &vals);
			else if (n->type == N_TPG)
				ret = ut_tpg_get_attributes(sh->ut, n->wwn,
							    n->tag, &vals);
			else
				ret = ut_acl_get_attributes(sh->ut, n->wwn,
							    n->tag,
							    n->node_wwn, &vals);
			if (ret)
				goto out;
		}
	} else if (!strcmp(group, "parameter")) {
		kind = "tpg_parameter";
		ret = ut_tpg_get_parameters(sh->ut, n->wwn, n->tag, &vals);
		if (ret)
			goto out;
		if (n->type == N_ACL) {
			/* An ACL's parameters are what its session
			 * negotiated; without a session, the TPG's. */
			json_t *ss = NULL, *s;

			if (!ut_sessions(sh->ut, &ss))
				json_array_foreach(ss, i, s) {
					if (json_str(s, "initiator") &&
					    !strcmp(json_str(s, "initiator"),
						    n->node_wwn) &&
					    json_str(s, "target") &&
					    !strcmp(json_str(s, "target"),
						    n->wwn) &&
					    json_is_object(json_object_get(
						    s, "parameters"))) {
						json_object_update(vals,
							json_object_get(
							s, "parameters"));
						break;
					}
				}
			json_decref(ss);
		}
	}
	table = cli_describe(sh, kind);
	if (table) {
		json_array_foreach(table, i, e) {
			const char *nm = json_str(e, "name");
			const char *ds = json_str(e, "description");

			/* configshell's default description. */
			snprintf(d, sizeof(d), "The %s %s parameter.",
				 nm ? nm : "", group);
			if (nm)
				gset_add(g, nm,
					 !strcmp(kind, "tpg_parameter") ?
					 "string" : "number",
					 ds && *ds ? ds : d,
					 json_flag(e, "ro") ||
					 (n->type == N_ACL &&
					  !strcmp(group, "parameter")));
		}
	}
	json_object_foreach(vals, k, e) {
		struct gparam *gp = gset_find(g, k);

		if (!gp) {
			snprintf(d, sizeof(d), "The %s %s parameter.", k, group);
			gp = gset_add(g, k, !strcmp(group, "parameter") ?
				      "string" : "number", d,
				      n->type == N_ACL &&
				      !strcmp(group, "parameter"));
		}
		free(gp->value);
		gp->value = value_text(e);
	}
out:
	json_decref(vals);
	if (g->n > 1)
		qsort(g->p, g->n, sizeof(*g->p), gp_cmp);
	if (ret) {
		cli_ut_error(sh);
		gset_free(g);
		return -1;
	}
	return 0;
}

size_t group_params(struct shell *sh, struct node *n, const char *group,
		    bool writable_only, char **out, size_t max)
{
	struct gset g;
	size_t k = 0;

	if (!has_group(n, group) || group_load(sh, n, group, false, &g))
		return 0;
	for (size_t i = 0; i < g.n && k < max; i++)
		if (!writable_only || !g.p[i].ro)
			out[k++] = strdup(g.p[i].name);
	gset_free(&g);
	return k;
}

static void print_groups(struct node *n)
{
	const char *gs[8];
	size_t k = node_groups(n, gs, 8);

	printf("AVAILABLE CONFIGURATION GROUPS\n"
	       "==============================\n");
	for (size_t i = 0; i < k; i++)
		printf("%s%s", i ? " " : "", gs[i]);
	printf("\n");
}

static void underline(size_t l, char c)
{
	while (l--)
		putchar(c);
	putchar('\n');
}

static void upper(const char *s, char *buf, size_t len)
{
	size_t i;

	for (i = 0; s[i] && i < len - 1; i++)
		buf[i] = (char)(s[i] >= 'a' && s[i] <= 'z' ? s[i] - 32 : s[i]);
	buf[i] = '\0';
}

int cli_cmd_get(struct shell *sh, struct node *n, struct cli_args *a)
{
	const char *group = a->v[0];
	struct gset g;
	char title[128], up[64], line[4096];

	if (!group) {
		print_groups(n);
		return 0;
	}
	if (!has_group(n, group))
		return cli_error(sh, "Unknown configuration group: %s", group);
	if (group_load(sh, n, group, true, &g))
		return -1;
	if (!a->nextra) {
		upper(group, up, sizeof(up));
		snprintf(title, sizeof(title), "%s CONFIG GROUP", up);
		printf("%s\n", title);
		underline(strlen(title), '=');
		for (size_t i = 0; i < g.n; i++) {
			snprintf(line, sizeof(line), "%s=%s%s", g.p[i].name,
				 g.p[i].value ? g.p[i].value : "",
				 g.p[i].ro ? " [ro]" : "");
			printf("%s\n", line);
			underline(strlen(line), '-');
			printf("%s\n\n", g.p[i].desc);
		}
	}
	for (size_t i = 0; i < a->nextra; i++) {
		struct gparam *p = gset_find(&g, param_name(group,
							     a->extra[i]));

		if (!p) {
			gset_free(&g);
			return cli_error(sh, "No parameter '%s' in group '%s'.",
					 a->extra[i], group);
		}
		printf("%s=%s %s\n", p->name, p->value ? p->value : "",
		       p->ro ? "[ro]" : "");
	}
	gset_free(&g);
	return 0;
}

static void check_secret(struct shell *sh, const char *name, const char *v)
{
	size_t l = strlen(v);

	/* RFC 7143 section 12.1.3 (CHAP): secrets should be at least 12
	 * bytes; many initiators (open-iscsi among them) take at most 16. */
	if (l && (l < 12 || l > 16))
		cli_warn(sh, "Warning: %s is %zu bytes long; CHAP secrets of 12 "
			 "to 16 bytes work with every initiator (RFC 7143 "
			 "12.1.3 asks for at least 12).", name, l);
}

/* LIO's rule, kept: with the TPG attribute authentication=0 an initiator
 * that offers only AuthMethod=None gets in although CHAP credentials are
 * set (one that offers CHAP is checked against them, RFC 7143 6.2.1).
 * Say so when credentials are set where they are optional. */
static void warn_optional_chap(struct shell *sh, struct node *n,
			       const struct gset *g)
{
	json_t *at = json_object_get(n->tpg, "attributes");
	bool creds = false;

	for (size_t i = 0; i < g->n; i++)
		if ((!strcmp(g->p[i].name, "userid") ||
		     !strcmp(g->p[i].name, "password")) &&
		    g->p[i].value && *g->p[i].value)
			creds = true;
	if (creds && (n->type == N_TPG || n->type == N_ACL) &&
	    json_num(at, "authentication", 1) == 0)
		cli_warn(sh, "Warning: CHAP is optional in this TPG: set "
			 "attribute authentication=1 to require it.");
}

int cli_cmd_set(struct shell *sh, struct node *n, struct cli_args *a)
{
	const char *group = a->v[0];
	struct gset g;
	json_t *obj = NULL;
	struct ut_auth auth = { 0 };
	int enable = UT_DEFAULT, ret = 0;
	char err[512], up[64], title[128];

	if (!group) {
		print_groups(n);
		return 0;
	}
	if (!has_group(n, group))
		return cli_error(sh, "Unknown configuration group: %s", group);
	if (group_load(sh, n, group, false, &g))
		return -1;
	if (!a->nkw) {
		upper(group, up, sizeof(up));
		snprintf(title, sizeof(title), "%s CONFIG GROUP", up);
		printf("%s\n", title);
		underline(strlen(title), '=');
		for (size_t i = 0; i < g.n; i++) {
			char l[512];

			if (g.p[i].ro)
				continue;
			snprintf(l, sizeof(l), "%s=%s", g.p[i].name,
				 g.p[i].type);
			printf("%s\n", l);
			underline(strlen(l), '-');
			printf("%s\n\n", g.p[i].desc);
		}
		gset_free(&g);
		return 0;
	}
	obj = json_object();
	/* Validate every parameter first: nothing changes on a typo. */
	for (size_t i = 0; i < a->nkw; i++) {
		const struct cli_kv *kv = a->kw[i];
		const char *key = param_name(group, kv->key);
		struct gparam *p = gset_find(&g, key);

		if (!p) {
			ret = cli_error(sh, "Unknown parameter %s in group '%s'.",
					kv->key, group);
			goto out;
		}
		if (p->ro) {
			ret = cli_error(sh, "Parameter %s is read-only.",
					kv->key);
			goto out;
		}
		if (!strcmp(group, "attribute") ||
		    (!strcmp(group, "alua") && n->type == N_ALUA_GP)) {
			char *end;
			long long v = strtoll(kv->value, &end, 0);
			int b = cli_parse_bool(kv->value);

			/* The wiki's demo-mode line ends its last value with
			 * the sentence's full stop ("cache_dynamic_acls=1.")
			 * and LIO took it. A number followed by one '.' has
			 * no other reading: take the number, say so. */
			if (end != kv->value && end[0] == '.' && !end[1]) {
				cli_warn(sh, "Warning: reading %s=%s as %lld "
					 "(trailing '.' ignored).", kv->key,
					 kv->value, v);
				end++;
			}
			if (*end || !*kv->value) {
				if (b < 0) {
					ret = cli_error(sh, "Not setting %s! "
							"Syntax error, '%s' is "
							"not a NUMBER.",
							kv->key, kv->value);
					goto out;
				}
				v = b;
			}
			json_object_set_new(obj, kv->key, json_integer(v));
		} else if (!strcmp(group, "parameter") ||
			   !strcmp(group, "alua")) {
			json_object_set_new(obj, kv->key,
					    json_string(kv->value));
		} else if (!strcmp(group, "global") ||
			   !strcmp(group, "netacl")) {
			/* checked when stored */
		} else if (!strcmp(kv->key, "enable")) {
			enable = cli_parse_bool(kv->value);
			if (enable < 0) {
				ret = cli_error(sh, "Not setting enable! Syntax "
						"error, '%s' is not true|false.",
						kv->value);
				goto out;
			}
		} else {
			const char **slot =
				!strcmp(key, "userid") ? &auth.userid :
				!strcmp(key, "password") ? &auth.password :
				!strcmp(key, "mutual_userid") ?
				&auth.mutual_userid : &auth.mutual_password;

			*slot = kv->value;
			if (strstr(kv->key, "password"))
				check_secret(sh, kv->key, kv->value);
		}
	}
	if (!strcmp(group, "global")) {
		for (size_t i = 0; i < a->nkw; i++) {
			if (pref_set(sh, gpref_find(a->kw[i]->key),
				     a->kw[i]->value, err, sizeof(err))) {
				ret = cli_error(sh, "%s", err);
				goto out;
			}
		}
	} else if (!strcmp(group, "attribute")) {
		ret = n->type == N_SO ?
			ut_backstore_set_attributes(sh->ut, n->plugin,
						    n->so_name, obj) :
		      n->type == N_TPG ?
			ut_tpg_set_attributes(sh->ut, n->wwn, n->tag, obj) :
			ut_acl_set_attributes(sh->ut, n->wwn, n->tag,
					      n->node_wwn, obj);
	} else if (!strcmp(group, "alua")) {
		json_t *p, *r = NULL;

		if (n->type == N_LUN) {
			p = json_pack("{s:s?, s:i, s:i}", "wwn", n->wwn,
				      "tag", (int)n->tag, "lun", (int)n->index);
			json_object_update(p, obj);
		} else
			p = json_pack("{s:s?, s:s?, s:s, s:O}", "plugin",
				      n->parent->parent->plugin, "name",
				      n->parent->parent->so_name, "group",
				      n->name, "attributes", obj);
		ret = ut_call(sh->ut, n->type == N_LUN ? "lun.set_alua" :
			      "alua.set_attributes", p, &r);
		json_decref(p);
		json_decref(r);
	} else if (!strcmp(group, "netacl")) {
		json_t *p = netacl_params(n), *r = NULL;

		for (size_t i = 0; i < a->nkw; i++)
			json_object_set_new(p, "allowed_networks",
					    netacl_list(a->kw[i]->value));
		ret = ut_call(sh->ut, n->type == N_TPG ?
			      "tpg.set_allowed_networks" :
			      "acl.set_allowed_networks", p, &r);
		json_decref(p);
		json_decref(r);
	} else if (!strcmp(group, "parameter")) {
		ret = ut_tpg_set_parameters(sh->ut, n->wwn, n->tag, obj);
	} else if (!strcmp(group, "discovery_auth")) {
		ret = ut_discovery_auth_set(sh->ut, enable, &auth);
	} else if (n->type == N_TPG) {
		ret = ut_tpg_set_auth(sh->ut, n->wwn, n->tag, &auth);
	} else {
		ret = ut_acl_set_auth(sh->ut, n->wwn, n->tag, n->node_wwn,
				      &auth);
	}
	if (ret) {
		ret = cli_ut_error(sh);
		goto out;
	}
	if (strcmp(group, "global"))
		sh->changed = true;
	gset_free(&g);
	if (group_load(sh, n, group, true, &g)) {
		ret = -1;
		goto out;
	}
	for (size_t i = 0; i < a->nkw; i++) {
		struct gparam *p = gset_find(&g, param_name(group,
							     a->kw[i]->key));

		cli_info(sh, "Parameter %s is now '%s'.", a->kw[i]->key,
			 p && p->value ? p->value : "");
	}
	if (!strcmp(group, "auth"))
		warn_optional_chap(sh, n, &g);
out:
	json_decref(obj);
	gset_free(&g);
	return ret;
}

