# libutarget and the utargetcli built on it. Meant to be included by the
# top-level Makefile after its variables (CC, BUILD, CPPFLAGS, CFLAGS, WARN,
# LDFLAGS) are set:   include src/lib/lib.mk
# Standalone:         make -f Makefile   (with the include line), or
#                     make -f src/lib/lib.mk -f Makefile ... (see the report)
LIB_SRCS := $(wildcard src/lib/*.c)
LIB_PIC_OBJS := $(patsubst %.c,$(BUILD)/pic/%.o,$(LIB_SRCS))
# ABI major 0 (the soname); the file carries the whole VERSION, so the
# minor follows the one version number: libutarget.so.0.1.0.
LIB_ABI := 0
LIB_SONAME := libutarget.so.$(LIB_ABI)
LIB_REAL := libutarget.so.$(VERSION)
LIB_MAP := src/lib/libutarget.map

$(BUILD)/pic/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC    $< (PIC)"
	@$(CC) $(CPPFLAGS) $(CFLAGS) $(WARN) -fPIC -fvisibility=default -c $< -o $@

# The export map keeps everything but ut_* local (checked by
# tests/integration/test_install.py with nm -D). libutarget.so and .so.0 are
# the symlinks an installed tree has, so the build tree links the same way.
$(BUILD)/$(LIB_REAL): $(LIB_PIC_OBJS) $(LIB_MAP)
	$(CC) $(CFLAGS) $(LDFLAGS) -shared -Wl,-soname,$(LIB_SONAME) \
	  -Wl,--version-script=$(LIB_MAP) -Wl,-z,defs -o $@ $(LIB_PIC_OBJS) -ljansson

$(BUILD)/$(LIB_SONAME) $(BUILD)/libutarget.so: $(BUILD)/$(LIB_REAL)
	ln -sf $(LIB_REAL) $@

$(BUILD)/libutarget.a: $(call obj,$(BUILD),$(LIB_SRCS))
	@rm -f $@
	ar rcs $@ $^

# utargetcli is built on libutarget (static: no rpath games for the build
# tree). Extra prerequisites join the top-level rule's $^ after its objects.
$(BUILD)/utargetcli: $(BUILD)/libutarget.a
all: $(BUILD)/libutarget.so $(BUILD)/$(LIB_SONAME)
