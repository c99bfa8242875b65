/* libFuzzer harness: saveconfig.json loading (src/control/config.c
 * ctl_config_restore) on random JSON, then dumping the result again
 * (ctl_config_dump) and restoring that dump on an empty configuration,
 * which must load without a single error: what we save we can load.
 *
 * fuzz_json_sanitize keeps every file inside a private temporary directory
 * and every portal on loopback and a free port; the configuration is
 * cleared after each input. The first byte of the input picks
 * abort_on_error (odd) or not; the rest is the document. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "control/model.h"
#include "control/saveconfig.h"
#include "fuzz_json.h"
#include "iscsi/iscsi.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int init;
	json_error_t jerr;
	json_t *root, *errors, *dump;
	char err[1024];
	int rc;

	if (!init) {
		fuzz_quiet();
		fuzz_json_setup();
		init = 1;
	}
	if (size < 1)
		return 0;
	root = json_loadb((const char *)data + 1, size - 1,
			  JSON_REJECT_DUPLICATES, &jerr);
	if (!root)
		return 0;
	fuzz_json_sanitize(root);
	errors = json_array();
	pthread_mutex_lock(&iscsi_fabric.lock);
	rc = ctl_config_restore(root, data[0] & 1, errors, err, sizeof(err));
	(void)rc;
	dump = ctl_config_dump();
	pthread_mutex_unlock(&iscsi_fabric.lock);
	ctl_config_clear(); /* takes the fabric lock itself */
	if (dump) {
		json_t *errors2 = json_array();

		/* Round trip: the dump of what loaded loads without error. */
		pthread_mutex_lock(&iscsi_fabric.lock);
		rc = ctl_config_restore(dump, false, errors2, err, sizeof(err));
		pthread_mutex_unlock(&iscsi_fabric.lock);
		if (rc || json_array_size(errors2)) {
			char *s = json_dumps(errors2, 0);

			fprintf(stderr, "fuzz_config: the dump does not load back: %s %s\n",
				rc ? err : "", s ? s : "");
			abort();
		}
		json_decref(errors2);
		json_decref(dump);
		ctl_config_clear();
	}
	json_decref(errors);
	json_decref(root);
	fuzz_json_clean();
	return 0;
}
