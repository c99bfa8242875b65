/* utargetcli: the targetcli-compatible shell (a client of utargetd's
 * control socket). The control API and the shell are being built (see the
 * configuration and shell issues); this entry point already takes the
 * documented options so scripts and packaging can rely on it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define UTARGET_VERSION "0.1.0"

int main(int argc, char **argv)
{
	const char *sock = getenv("UTARGET_SOCKET");
	int opt;

	while ((opt = getopt(argc, argv, "s:hV")) != -1) {
		switch (opt) {
		case 's':
			sock = optarg;
			break;
		case 'V':
			printf("utargetcli %s\n", UTARGET_VERSION);
			return 0;
		case 'h':
			printf("usage: utargetcli [-s SOCKET] [COMMAND ...]\n");
			return 0;
		default:
			fprintf(stderr, "usage: utargetcli [-s SOCKET] [COMMAND ...]\n");
			return 2;
		}
	}
	if (optind < argc && !strcmp(argv[optind], "version")) {
		printf("utargetcli version %s\n", UTARGET_VERSION);
		return 0;
	}
	(void)sock;
	fprintf(stderr, "utargetcli: the control shell is not implemented yet; "
			"edit saveconfig.json and restart utargetd\n");
	return 1;
}
