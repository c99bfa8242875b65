# libutarget and the utargetcli built on it. Meant to be included by the
# top-level Makefile after its variables (CC, BUILD, CPPFLAGS, CFLAGS, WARN,
# LDFLAGS) are set:   include src/lib/lib.mk
# Standalone:         make -f Makefile   (with the include line), or
#                     make -f src/lib/lib.mk -f Makefile ... (see the report)
LIB_SRCS := $(wildcard src/lib/*.c)
LIB_PIC_OBJS := $(patsubst %.c,$(BUILD)/pic/%.o,$(LIB_SRCS))
LIB_SONAME := libutarget.so.0

$(BUILD)/pic/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC    $< (PIC)"
	@$(CC) $(CPPFLAGS) $(CFLAGS) $(WARN) -fPIC -fvisibility=default -c $< -o $@

$(BUILD)/libutarget.so: $(LIB_PIC_OBJS)
	$(CC) $(CFLAGS) $(LDFLAGS) -shared -Wl,-soname,$(LIB_SONAME) -o $@ $^ -ljansson

$(BUILD)/libutarget.a: $(call obj,$(BUILD),$(LIB_SRCS))
	@rm -f $@
	ar rcs $@ $^

# utargetcli is built on libutarget (static: no rpath games for the build
# tree). Extra prerequisites join the top-level rule's $^ after its objects.
$(BUILD)/utargetcli: $(BUILD)/libutarget.a
all: $(BUILD)/libutarget.so
