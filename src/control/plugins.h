/* The control layer's table of backstore plugins (plugins.c). */
#ifndef UT_CONTROL_PLUGINS_H
#define UT_CONTROL_PLUGINS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "control/model.h"

/* What backstore.create refuses a plugin's object without. */
enum ctl_needs { CTL_NEEDS_DEV, CTL_NEEDS_SIZE, CTL_NEEDS_CONFIG };

struct ctl_plugin {
	const char *name;      /* utargetd's (API, tree): "user:rbd" */
	const char *lio;       /* saveconfig.json's "plugin": "user" */
	enum ctl_needs needs;
	bool live_size;        /* size is the medium's: not saved, get_config
				  live=true shows it */
	bool write_back_default; /* a saved object without write_back */
	/* the plugin's own saveconfig fields */
	void (*save)(const struct ctl_so *so, json_t *o);
	/* restore: spec fields the common parsing does not fill (NULL:
	 * none); -1 with err when the saved object cannot be taken */
	int (*load)(json_t *j, struct ctl_so_spec *spec, char *err,
		    size_t errlen);
	/* utargetcli's `ls` line for the object, before its activated /
	 * deactivated word (targetcli-fb's UI*StorageObject.summary) */
	void (*summary)(const struct ctl_so *so, char *buf, size_t len);
};

/* By utargetd's name or LIO's ("user" is user:rbd); NULL when unknown. */
const struct ctl_plugin *ctl_plugin_find(const char *name);
/* The name as saveconfig.json / as the tree says it (name itself when not
 * a known plugin). */
const char *ctl_plugin_lio_name(const char *name);
const char *ctl_plugin_tree_name(const char *name);

#endif
