/* Until the top-level Makefile links build/libutarget.a (src/lib/lib.mk),
 * utargetcli compiles libutarget's sources in through this file, so a plain
 * `make` builds it. With lib.mk included this stays harmless: the archive's
 * members are then not pulled in. Delete once the Makefile links the lib. */
#include "lib/client.c"
#include "lib/api.c"
