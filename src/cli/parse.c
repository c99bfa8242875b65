/* utargetcli command-line grammar (see parse.h). */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli/parse.h"

void cli_tokens_free(struct cli_token *toks, int n)
{
	for (int i = 0; i < n; i++)
		free(toks[i].text);
	free(toks);
}

int cli_tokenize(const char *line, struct cli_token **toks)
{
	size_t len = strlen(line), i = 0;
	struct cli_token *t = NULL;
	int n = 0, cap = 0;

	*toks = NULL;
	for (;;) {
		char *buf;
		size_t o = 0, start;

		while (i < len && isspace((unsigned char)line[i]))
			i++;
		if (i >= len)
			break;
		start = i;
		buf = malloc(len - i + 1);
		if (!buf)
			goto fail;
		while (i < len && !isspace((unsigned char)line[i])) {
			char q = line[i];

			if (q == '\'' || q == '"') {
				const char *e = strchr(line + i + 1, q);

				if (!e) {
					free(buf);
					goto fail;
				}
				memcpy(buf + o, line + i + 1,
				       (size_t)(e - line) - i - 1);
				o += (size_t)(e - line) - i - 1;
				i = (size_t)(e - line) + 1;
				continue;
			}
			buf[o++] = line[i++];
		}
		buf[o] = '\0';
		if (n == cap) {
			struct cli_token *nt;

			cap = cap ? cap * 2 : 8;
			nt = realloc(t, (size_t)cap * sizeof(*t));
			if (!nt) {
				free(buf);
				goto fail;
			}
			t = nt;
		}
		t[n].text = buf;
		t[n].start = start;
		t[n].end = i;
		n++;
	}
	*toks = t;
	return n;
fail:
	cli_tokens_free(t, n);
	return -1;
}

bool cli_is_path_token(const char *t)
{
	size_t l = strlen(t);

	return t[0] == '@' || strchr(t, '/') || !strcmp(t, ".") ||
	       !strcmp(t, "..") || (l && t[l - 1] == '*');
}

bool cli_is_command_token(const char *t)
{
	if (!*t)
		return false;
	for (; *t; t++)
		if (!isalnum((unsigned char)*t) && *t != '_')
			return false;
	return true;
}

bool cli_is_kparam(const char *t, const char **eq)
{
	const char *p = t;

	while (*p && (isalnum((unsigned char)*p) || *p == '_' || *p == '-'))
		p++;
	if (p == t || *p != '=')
		return false;
	if (eq)
		*eq = p;
	return true;
}

void cli_line_free(struct cli_line *l)
{
	free(l->path);
	free(l->command);
	for (size_t i = 0; i < l->npp; i++)
		free(l->pparams[i]);
	free(l->pparams);
	for (size_t i = 0; i < l->nkp; i++) {
		free(l->kparams[i].key);
		free(l->kparams[i].value);
	}
	free(l->kparams);
	memset(l, 0, sizeof(*l));
}

int cli_parse(const char *line, struct cli_line *out, char *err,
	      size_t errlen)
{
	struct cli_token *t;
	int n = cli_tokenize(line, &t), i = 0;

	memset(out, 0, sizeof(*out));
	if (n < 0) {
		snprintf(err, errlen, "Syntax error: unterminated quote.");
		return -1;
	}
	if (i < n && cli_is_path_token(t[i].text)) {
		out->path = t[i].text;
		t[i++].text = NULL;
	}
	if (i < n && !cli_is_kparam(t[i].text, NULL)) {
		out->command = t[i].text;
		t[i++].text = NULL;
	}
	if (n - i > 0) {
		out->pparams = calloc((size_t)(n - i), sizeof(char *));
		out->kparams = calloc((size_t)(n - i), sizeof(struct cli_kv));
		if (!out->pparams || !out->kparams)
			goto nomem;
	}
	for (; i < n; i++) {
		const char *eq;

		if (cli_is_kparam(t[i].text, &eq)) {
			struct cli_kv *kv = &out->kparams[out->nkp++];

			kv->key = strndup(t[i].text, (size_t)(eq - t[i].text));
			kv->value = strdup(eq + 1);
			if (!kv->key || !kv->value)
				goto nomem;
		} else {
			out->pparams[out->npp++] = t[i].text;
			t[i].text = NULL;
		}
	}
	cli_tokens_free(t, n);
	return 0;
nomem:
	cli_tokens_free(t, n);
	cli_line_free(out);
	snprintf(err, errlen, "Out of memory.");
	return -1;
}

void cli_args_free(struct cli_args *a)
{
	free(a->extra);
	free(a->kw);
	memset(a, 0, sizeof(*a));
}

static int sig_index(const struct cli_sig *s, const char *name)
{
	for (int i = 0; i < CLI_MAX_PARAMS && s->params[i]; i++)
		if (!strcmp(s->params[i], name))
			return i;
	return -1;
}

int cli_bind(const struct cli_sig *sig, const struct cli_line *l,
	     struct cli_args *a, char *err, size_t errlen)
{
	int nargs = 0, nstd, nmissing = 0, nunexp = 0;
	char list[512] = "";
	size_t np = l->npp;

	memset(a, 0, sizeof(*a));
	while (nargs < CLI_MAX_PARAMS && sig->params[nargs])
		nargs++;
	/* Missing required parameters: not given positionally nor by key. */
	for (int i = (int)np; i < sig->nreq; i++) {
		bool by_key = false;

		for (size_t k = 0; k < l->nkp; k++)
			if (!strcmp(l->kparams[k].key, sig->params[i]))
				by_key = true;
		if (by_key)
			continue;
		snprintf(list + strlen(list), sizeof(list) - strlen(list),
			 nmissing ? ", '%s'" : "'%s'", sig->params[i]);
		nmissing++;
	}
	if (nmissing == 1) {
		list[strlen(list) - 1] = '\0';
		snprintf(err, errlen, "Missing required parameter %s",
			 list + 1);
		return -1;
	}
	if (nmissing) {
		snprintf(err, errlen, "Missing required parameters %s", list);
		return -1;
	}
	if (!sig->kwargs) {
		for (size_t k = 0; k < l->nkp; k++) {
			if (sig_index(sig, l->kparams[k].key) >= 0)
				continue;
			snprintf(list + strlen(list),
				 sizeof(list) - strlen(list),
				 nunexp ? ", '%s'" : "'%s'",
				 l->kparams[k].key);
			nunexp++;
		}
		if (nunexp == 1) {
			snprintf(err, errlen,
				 "Unexpected keyword parameter %s.", list);
			return -1;
		}
		if (nunexp) {
			snprintf(err, errlen,
				 "Unexpected keyword parameters %s.", list);
			return -1;
		}
	}
	nstd = (int)np;
	for (size_t k = 0; k < l->nkp; k++) {
		int idx = sig_index(sig, l->kparams[k].key);

		if (idx >= 0)
			nstd++;
		if ((idx >= 0 && (size_t)idx < np)) {
			snprintf(err, errlen, "Duplicate parameter %s.",
				 l->kparams[k].key);
			return -1;
		}
		for (size_t j = 0; j < k; j++)
			if (!strcmp(l->kparams[j].key, l->kparams[k].key)) {
				snprintf(err, errlen, "Duplicate parameter %s.",
					 l->kparams[k].key);
				return -1;
			}
	}
	if (nargs == sig->nreq && nstd != sig->nreq && !sig->varargs) {
		snprintf(err, errlen,
			 "Got %d positionnal parameters, expected exactly %d.",
			 nstd, sig->nreq);
		return -1;
	}
	if (nstd > nargs && !sig->varargs) {
		snprintf(err, errlen,
			 "Got %d positionnal parameters, expected at most %d.",
			 nstd, nargs);
		return -1;
	}
	a->extra = calloc(np + 1, sizeof(*a->extra));
	a->kw = calloc(l->nkp + 1, sizeof(*a->kw));
	if (!a->extra || !a->kw) {
		cli_args_free(a);
		snprintf(err, errlen, "Out of memory.");
		return -1;
	}
	for (size_t i = 0; i < np; i++) {
		if ((int)i < nargs)
			a->v[i] = l->pparams[i];
		else
			a->extra[a->nextra++] = l->pparams[i];
	}
	for (size_t k = 0; k < l->nkp; k++) {
		int idx = sig_index(sig, l->kparams[k].key);

		if (idx >= 0)
			a->v[idx] = l->kparams[k].value;
		else
			a->kw[a->nkw++] = &l->kparams[k];
	}
	return 0;
}

/* Splits "name123" into ("name", 123); has_num false without digits. */
static size_t split_num(const char *s, unsigned long long *num, bool *has)
{
	size_t l = strlen(s), p = l;

	while (p > 0 && isdigit((unsigned char)s[p - 1]))
		p--;
	*has = p < l;
	*num = *has ? strtoull(s + p, NULL, 10) : 0;
	return p;
}

int cli_name_cmp(const char *a, const char *b)
{
	unsigned long long na, nb;
	bool ha, hb;
	size_t pa = split_num(a, &na, &ha), pb = split_num(b, &nb, &hb);
	size_t m = pa < pb ? pa : pb;
	int c = memcmp(a, b, m);

	/* configshell sorts by (prefix, number) tuples. */
	if (c)
		return c;
	if (pa != pb)
		return pa < pb ? -1 : 1;
	if (na != nb)
		return na < nb ? -1 : 1;
	return strcmp(a, b);
}

long long cli_human_to_bytes(const char *s)
{
	char buf[64], *p = buf, *end;
	size_t l = 0;
	int power = 0;
	unsigned long long v;

	for (const char *c = s; *c && l < sizeof(buf) - 1; c++)
		if (*c != 'i' && *c != 'I')
			buf[l++] = (char)tolower((unsigned char)*c);
	buf[l] = '\0';
	if (!l || strlen(s) >= sizeof(buf))
		return -1;
	if (buf[l - 1] == 'b')
		buf[--l] = '\0';
	if (!l)
		return -1;
	switch (buf[l - 1]) {
	case 'k':
		power = 1;
		break;
	case 'm':
		power = 2;
		break;
	case 'g':
		power = 3;
		break;
	case 't':
		power = 4;
		break;
	}
	if (power)
		buf[--l] = '\0';
	if (!l || !isdigit((unsigned char)*p))
		return -1;
	errno = 0;
	v = strtoull(p, &end, 10);
	if (errno || *end)
		return -1;
	while (power--) {
		if (v > (1ULL << 53))
			return -1;
		v *= 1024;
	}
	return v > (unsigned long long)LLONG_MAX ? -1 : (long long)v;
}

int cli_parse_bool(const char *s)
{
	static const char *const t[] = { "true", "yes", "on", "1" };
	static const char *const f[] = { "false", "no", "off", "0" };

	for (size_t i = 0; i < 4; i++) {
		if (!strcasecmp(s, t[i]))
			return 1;
		if (!strcasecmp(s, f[i]))
			return 0;
	}
	return -1;
}
