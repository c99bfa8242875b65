/* libFuzzer harness: the JSON-RPC handler (src/control/rpc.c
 * ctl_rpc_handle, which takes the fabric lock itself, and every method of
 * ops.c) on random JSON.
 *
 * Input: a JSON document. An object is one request; an array is a sequence
 * of requests run in order (create a backstore, then a target, a LUN ...).
 * Before running, fuzz_json_sanitize keeps files inside a private temporary
 * directory and portals on loopback and a free port (never 3260). After
 * each input the configuration is cleared and the directory emptied, so
 * inputs do not see each other's objects. No worker threads run: session
 * refreshes find no sessions. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "control/model.h"
#include "control/rpc.h"
#include "fuzz_json.h"
#include "iscsi/iscsi.h"

static void one(json_t *req)
{
	json_t *res = ctl_rpc_handle(req);

	if (res) {
		char *s = json_dumps(res, 0); /* the reply must serialise */

		if (!s)
			abort();
		free(s);
		json_decref(res);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int init;
	json_error_t jerr;
	json_t *root, *v;
	size_t i;

	if (!init) {
		fuzz_quiet();
		fuzz_json_setup();
		snprintf(ctl_settings.config_file,
			 sizeof(ctl_settings.config_file),
			 "%s/saveconfig.json", fuzz_dir);
		ctl_settings.max_backup_files = 2;
		init = 1;
	}
	root = json_loadb((const char *)data, size,
			  JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
	if (!root)
		return 0;
	fuzz_json_sanitize(root);
	if (json_is_array(root)) {
		json_array_foreach(root, i, v)
			one(v);
	} else {
		one(root);
	}
	json_decref(root);
	ctl_config_clear(); /* takes the fabric lock itself */
	fuzz_json_clean();
	return 0;
}
