# make install / uninstall (GNU conventions: PREFIX, DESTDIR, and the
# directory variables below, each overridable). Included by the Makefile.
#
#   make install PREFIX=/usr DESTDIR=/tmp/root
#
# SYSCONFDIR and RUNSTATEDIR are set in the Makefile because they are
# compiled into utargetd (its root defaults): give them at build time too.
PREFIX      ?= /usr/local
BINDIR      ?= $(PREFIX)/bin
SBINDIR     ?= $(PREFIX)/sbin
LIBDIR      ?= $(PREFIX)/lib
INCLUDEDIR  ?= $(PREFIX)/include
DATAROOTDIR ?= $(PREFIX)/share
MANDIR      ?= $(DATAROOTDIR)/man
DOCDIR      ?= $(DATAROOTDIR)/doc/utarget
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
# systemd reads /usr/local/lib/systemd/system too; Debian bookworm packages
# use /lib/systemd/system (debian/rules sets it).
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system
BASHCOMPDIR ?= $(DATAROOTDIR)/bash-completion/completions
# Where `import utarget` finds the module: Debian's python3 searches
# /usr/lib/python3/dist-packages for /usr and the versioned
# /usr/local/lib/python3.X/dist-packages for /usr/local.
# the system interpreter, not one a version manager put first in PATH
PYTHON3     ?= $(firstword $(wildcard /usr/bin/python3) python3)
PYTHONDIR   ?= $(if $(filter /usr,$(PREFIX)),$(PREFIX)/lib/python3/dist-packages,$(PREFIX)/lib/python$(shell $(PYTHON3) -c 'import sys; print("%d.%d" % sys.version_info[:2])')/dist-packages)
INSTALL     ?= install

INSTALL_PATHS = $(PREFIX) $(BINDIR) $(SBINDIR) $(LIBDIR) $(INCLUDEDIR) $(SYSCONFDIR) $(RUNSTATEDIR)
MAN_PAGES := man8/utargetd.8 man8/utargetcli.8 man5/utarget-saveconfig.json.5 man3/libutarget.3
MAN_OUT   := $(addprefix $(BUILD)/man/,$(MAN_PAGES))
PY_SRCS   := $(shell find python/utarget -name '*.py' 2>/dev/null | sort)
GEN_SUBST  = sed -e 's|@VERSION@|$(VERSION)|g' -e 's|@PREFIX@|$(PREFIX)|g' \
	-e 's|@SBINDIR@|$(SBINDIR)|g' -e 's|@BINDIR@|$(BINDIR)|g' \
	-e 's|@LIBDIR@|$(LIBDIR)|g' -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|g' \
	-e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' -e 's|@RUNSTATEDIR@|$(RUNSTATEDIR)|g'

.PHONY: install uninstall man units
all: man units $(BUILD)/utarget.pc

# Man pages are roff sources in man/; make fills in the version and paths.
man: $(MAN_OUT)
$(BUILD)/man/%: man/%.in VERSION $(BUILD)/install-paths
	@mkdir -p $(dir $@)
	$(GEN_SUBST) $< > $@

units: $(BUILD)/systemd/utargetd.service
$(BUILD)/systemd/utargetd.service: etc/systemd/utargetd.service.in VERSION $(BUILD)/install-paths
	@mkdir -p $(dir $@)
	$(GEN_SUBST) $< > $@

# The .pc, the unit and the man pages name the paths of this install:
# rebuild them when the paths change.
$(BUILD)/utarget.pc: src/lib/utarget.pc.in VERSION $(BUILD)/install-paths
	$(GEN_SUBST) $< > $@
$(BUILD)/install-paths: FORCE
	@mkdir -p $(dir $@)
	@echo '$(INSTALL_PATHS)' | cmp -s - $@ || echo '$(INSTALL_PATHS)' > $@
.PHONY: FORCE
FORCE:

install: all
	$(INSTALL) -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR) \
	  $(DESTDIR)$(INCLUDEDIR)/utarget $(DESTDIR)$(PKGCONFIGDIR) \
	  $(DESTDIR)$(SYSTEMDUNITDIR) $(DESTDIR)$(BASHCOMPDIR) \
	  $(DESTDIR)$(PYTHONDIR)/utarget/rtslib \
	  $(DESTDIR)$(MANDIR)/man3 $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8
	$(INSTALL) -m 0755 $(BUILD)/utargetd $(DESTDIR)$(SBINDIR)/utargetd
	$(INSTALL) -m 0755 $(BUILD)/utargetcli $(DESTDIR)$(BINDIR)/utargetcli
	$(INSTALL) -m 0644 $(BUILD)/$(LIB_REAL) $(DESTDIR)$(LIBDIR)/$(LIB_REAL)
	ln -sf $(LIB_REAL) $(DESTDIR)$(LIBDIR)/$(LIB_SONAME)
	ln -sf $(LIB_SONAME) $(DESTDIR)$(LIBDIR)/libutarget.so
	$(INSTALL) -m 0644 $(BUILD)/libutarget.a $(DESTDIR)$(LIBDIR)/libutarget.a
	sed 's|^#define UT_LIB_VERSION UTARGET_VERSION$$|#define UT_LIB_VERSION "$(VERSION)"|' \
	  include/utarget/utarget.h > $(DESTDIR)$(INCLUDEDIR)/utarget/utarget.h
	chmod 0644 $(DESTDIR)$(INCLUDEDIR)/utarget/utarget.h
	grep -q '^#define UT_LIB_VERSION "$(VERSION)"$$' $(DESTDIR)$(INCLUDEDIR)/utarget/utarget.h
	$(INSTALL) -m 0644 $(BUILD)/utarget.pc $(DESTDIR)$(PKGCONFIGDIR)/utarget.pc
	$(INSTALL) -m 0644 $(BUILD)/systemd/utargetd.service \
	  $(DESTDIR)$(SYSTEMDUNITDIR)/utargetd.service
	$(INSTALL) -m 0644 etc/bash-completion/utargetcli $(DESTDIR)$(BASHCOMPDIR)/utargetcli
	for p in $(MAN_PAGES); do \
	  $(INSTALL) -m 0644 $(BUILD)/man/$$p $(DESTDIR)$(MANDIR)/$$p || exit 1; done
	for f in $(PY_SRCS); do \
	  $(INSTALL) -m 0644 $$f $(DESTDIR)$(PYTHONDIR)/$${f#python/} || exit 1; done
	echo '__version__ = "$(VERSION)"' > $(DESTDIR)$(PYTHONDIR)/utarget/_version.py

uninstall:
	rm -f $(DESTDIR)$(SBINDIR)/utargetd $(DESTDIR)$(BINDIR)/utargetcli \
	  $(DESTDIR)$(LIBDIR)/$(LIB_REAL) $(DESTDIR)$(LIBDIR)/$(LIB_SONAME) \
	  $(DESTDIR)$(LIBDIR)/libutarget.so $(DESTDIR)$(LIBDIR)/libutarget.a \
	  $(DESTDIR)$(INCLUDEDIR)/utarget/utarget.h $(DESTDIR)$(PKGCONFIGDIR)/utarget.pc \
	  $(DESTDIR)$(SYSTEMDUNITDIR)/utargetd.service $(DESTDIR)$(BASHCOMPDIR)/utargetcli \
	  $(addprefix $(DESTDIR)$(MANDIR)/,$(MAN_PAGES))
	rm -rf $(DESTDIR)$(PYTHONDIR)/utarget
	-rmdir $(DESTDIR)$(INCLUDEDIR)/utarget 2>/dev/null
