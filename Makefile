# landro - one non-recursive Makefile. `make help` lists the targets.
#
#   make            build everything into build/ (runs `make deps` first if needed)
#   make deps       install Debian packages, build wolfSSL + ngtcp2 into .deps/
#   make check      unit, fuzz-smoke and integration tests, then the unit and
#                   fuzz-smoke tests again under ASan+UBSan (build/san/)
#   make demo       two peers on loopback, a file written on one read on the other
#   make bench      figures against baselines measured in the same run
#   make fuzz       longer libFuzzer runs of every decoder (FUZZ_SECONDS each)
#   make coverage   unit tests with gcov line coverage
#   make install    PREFIX=/usr/local DESTDIR=
#   make clean
#
# Quiet unless V=1. SAN=1 builds with AddressSanitizer and UBSan into build/san.

.SUFFIXES:
.DEFAULT_GOAL := all
SHELL := /bin/bash

TOP     := $(CURDIR)
DEPSDIR := $(TOP)/.deps
DEPSTAMP := $(DEPSDIR)/.stamp-wolfssl-5.7.2-ngtcp2-1.11.0-v2
export PKG_CONFIG_PATH := $(DEPSDIR)/lib/pkgconfig

PREFIX  ?= /usr/local
DESTDIR ?=
CC      ?= cc
ifeq ($(origin CC),default)
CC := gcc
endif

ifeq ($(SAN),1)
O       ?= build/san
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
OPT     := -O1
else ifeq ($(COVERAGE),1)
O       ?= build/cov
SANFLAGS := --coverage
OPT     := -O0
else
O       ?= build
SANFLAGS :=
OPT     := -O2
endif

ifeq ($(V),1)
Q :=
else
Q := @
endif

PKGS_SYS  := fuse3 libevent libevent_pthreads inih
PKGS_DEPS := libngtcp2_crypto_wolfssl libngtcp2 wolfssl
# Recursive (=) so pkg-config runs only after .deps/ exists.
# (make 4.3 does not pass exported variables to $(shell), hence the env.)
PKGCONF    := PKG_CONFIG_PATH=$(DEPSDIR)/lib/pkgconfig pkg-config
PKG_CFLAGS = $(shell $(PKGCONF) --cflags $(PKGS_SYS) $(PKGS_DEPS))
# -lm stays out of the static group: static libm (pulled by wolfSSL) does not link into a PIE.
# LMDB is linked statically: store/mapspace.c reads one field of LMDB's
# transaction whose place it knows from the version in lmdb.h, so the code
# that runs must be the code of the header it was built against.
PKG_LIBS   = $(shell $(PKGCONF) --libs $(PKGS_SYS)) -Wl,-Bstatic -llmdb $(filter-out -lm,$(shell $(PKGCONF) --static --libs $(PKGS_DEPS))) -Wl,-Bdynamic -lpthread -lm

WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wno-unused-parameter
CFLAGS  ?=
CFLAGS  += -std=c11 -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 -DFUSE_USE_VERSION=35 $(OPT) -g $(WARN) \
           $(SANFLAGS) -MMD -MP -Istore -Inet -Ifs -Itools
LDFLAGS += $(SANFLAGS)

STORE_SRC := $(wildcard store/*.c)
NET_SRC   := $(wildcard net/*.c)
FS_SRC    := $(wildcard fs/*.c)
# Every folder tools/NAME/ with C files is one program: tools/landro/ is
# `landro`, any other is `landro-NAME` (tools/fsck/ -> landro-fsck).
TOOL_DIRS := $(patsubst tools/%/,%,$(sort $(dir $(wildcard tools/*/*.c))))
toolbin = $(O)/bin/$(if $(filter landro,$(1)),landro,landro-$(1))
UNIT_SRC  := $(wildcard tests/unit/test_*.c)
UNIT_HELPERS := $(filter-out tests/unit/test_%,$(wildcard tests/unit/*.c))
FUZZ_SRC  := $(wildcard tests/fuzz/fuzz_*.c)

obj = $(patsubst %.c,$(O)/obj/%.o,$(1))

LIB_STORE := $(O)/lib/liblandro_store.a
LIB_NET   := $(O)/lib/liblandro_net.a
LIB_FS    := $(O)/lib/liblandro_fs.a
LIBS_ALL  := $(if $(FS_SRC),$(LIB_FS)) $(if $(NET_SRC),$(LIB_NET)) $(LIB_STORE)

BINS := $(foreach d,$(TOOL_DIRS),$(call toolbin,$(d)))
# Test-only tools: built with the rest, left out of `make install`.
NOINSTALL := $(foreach t,impair fsck-damage fsx passthrough bench,$(call toolbin,$(t)))
UNIT_BINS := $(patsubst tests/unit/%.c,$(O)/tests/%,$(UNIT_SRC))
FUZZ_BINS := $(patsubst tests/fuzz/%.c,$(O)/fuzz/%,$(FUZZ_SRC))
REPLAY_BINS := $(patsubst tests/fuzz/fuzz_%.c,$(O)/tests/fuzzreplay_%,$(FUZZ_SRC))

.PHONY: all deps check check-unit check-san check-fuzz check-integration demo bench fuzz coverage install clean help
all: $(BINS) $(UNIT_BINS) $(REPLAY_BINS)

deps: $(DEPSTAMP)
$(DEPSTAMP): tools/deps.sh
	$(Q)tools/deps.sh

$(O)/obj/%.o: %.c | $(DEPSTAMP)
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS) $(PKG_CFLAGS) -c -o $@ $<

$(LIB_STORE): $(call obj,$(STORE_SRC))
$(LIB_NET): $(call obj,$(NET_SRC))
$(LIB_FS): $(call obj,$(FS_SRC))
$(O)/lib/%.a:
	@mkdir -p $(@D)
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ && ar rcs $@ $^

# Link the objects and the landro libraries named as prerequisites (in
# layer order: fs, net, store) with the system and .deps libraries.
define link
	@mkdir -p $(@D)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $(filter %.o,$^) $(filter %.a,$^) $(PKG_LIBS)
endef

define tool_rule
$(call toolbin,$(1)): $(call obj,$(wildcard tools/$(1)/*.c)) $(LIBS_ALL)
	$$(link)
endef
$(foreach d,$(TOOL_DIRS),$(eval $(call tool_rule,$(d))))

# Unit tests link only the layers they test, so one layer's work in
# progress never stops another layer's tests from building.
$(O)/tests/test_st_%: $(O)/obj/tests/unit/test_st_%.o $(call obj,$(UNIT_HELPERS)) $(LIB_STORE)
	$(link)
$(O)/tests/test_net_%: $(O)/obj/tests/unit/test_net_%.o $(call obj,$(UNIT_HELPERS)) $(LIB_NET) $(LIB_STORE)
	$(link)
$(O)/tests/test_fs_%: $(O)/obj/tests/unit/test_fs_%.o $(call obj,$(UNIT_HELPERS)) $(LIBS_ALL)
	$(link)

$(O)/tests/fuzzreplay_%: $(O)/obj/tests/fuzz/fuzz_%.o $(O)/obj/tests/fuzz/replay.o $(if $(NET_SRC),$(LIB_NET)) $(LIB_STORE)
	$(link)

# Fuzz targets: libFuzzer with clang; each also links into a plain replay
# driver (tests/fuzz/replay.c) so `make check` can run the corpus under gcc.
FUZZ_CFLAGS = -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined -Istore -Inet -Ifs $(PKG_CFLAGS)
$(O)/fuzz/%: tests/fuzz/%.c $(STORE_SRC) $(NET_SRC) | $(DEPSTAMP)
	@mkdir -p $(@D)
	@$(if $(Q),echo "  FUZZ    $@")
	$(Q)clang $(FUZZ_CFLAGS) -o $@ $< $(STORE_SRC) $(NET_SRC) $(PKG_LIBS)

check: $(DEPSTAMP)
	$(Q)$(MAKE) --no-print-directory all
	$(Q)$(MAKE) --no-print-directory SAN=1 all
	$(Q)tests/run.sh

check-unit: all
	$(Q)tests/run.sh unit

demo: all
	$(Q)tools/demo.sh

bench: all
	$(Q)tools/bench.sh

FUZZ_SECONDS ?= 60
fuzz: $(FUZZ_BINS)
	$(Q)for f in $(FUZZ_BINS); do n=$$(basename $$f); mkdir -p tests/fuzz/corpus/$$n; \
	  $$f -max_total_time=$(FUZZ_SECONDS) tests/fuzz/corpus/$$n || exit 1; done

coverage:
	$(Q)$(MAKE) --no-print-directory COVERAGE=1 all
	$(Q)O=build/cov tests/run.sh unit
	$(Q)gcov -o build/cov/obj/store store/*.c >/dev/null 2>&1; echo "coverage: see *.gcov"

# Binaries, man pages and the systemd template unit (landro@.service, its
# ExecStart pointing at the installed binary).
MANDIR  ?= $(PREFIX)/share/man
UNITDIR ?= $(PREFIX)/lib/systemd/system
install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(UNITDIR)
	install -m 0755 $(filter-out $(NOINSTALL),$(BINS)) $(DESTDIR)$(PREFIX)/bin/
	install -m 0644 docs/landro.1 $(DESTDIR)$(MANDIR)/man1/
	$(if $(wildcard docs/*.8),install -d $(DESTDIR)$(MANDIR)/man8 && install -m 0644 $(wildcard docs/*.8) $(DESTDIR)$(MANDIR)/man8/)
	sed 's|@BINDIR@|$(PREFIX)/bin|g' docs/landro@.service > $(DESTDIR)$(UNITDIR)/landro@.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/landro@.service

clean:
	rm -rf build

help:
	@sed -n '2,15p' Makefile | sed 's/^# \{0,1\}//'

-include $(shell find $(O)/obj -name '*.d' 2>/dev/null)
