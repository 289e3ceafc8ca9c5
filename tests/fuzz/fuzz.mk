# Builds the libFuzzer drivers (tests/fuzz/fuzz_*.c) into build/fuzz/, with
# the project's library sources compiled by clang under ASan + UBSan and
# libFuzzer's coverage instrumentation. Included by nothing: the top-level
# Makefile's `fuzz` target runs `make -f tests/fuzz/fuzz.mk` from the repo
# root, then tests/fuzz/run.sh. Separate from build/ and build/address/.

FUZZ_CC  ?= clang
FUZZ_OUT := build/fuzz
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=all
# The library is other people's code, checked with gcc -Werror by the main
# build; clang's different warnings must not stop fuzzing, so no -Werror
# there. The drivers keep the project's warnings as errors.
FUZZ_WARN := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
             -Wno-unused-parameter -Wformat=2
FUZZ_CFLAGS := -std=c11 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer -I. -pthread \
               -fno-strict-aliasing $(FUZZ_SAN) -MMD -MP
FUZZ_LIBS := -luring -lwslay -lcrypto -linih -lm -pthread -lhiredis -lz

# The library's folders: the top-level Makefile passes its FEATURE_DIRS.
FEATURE_DIRS ?= base engine net ws redis proto ops channels admission http
FUZZ_LIB_SRC := $(filter-out engine/main.c,$(foreach d,$(FEATURE_DIRS),$(wildcard $(d)/*.c)))
FUZZ_LIB_OBJ := $(FUZZ_LIB_SRC:%.c=$(FUZZ_OUT)/obj/%.o)
FUZZ_DRIVERS := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_TARGETS ?= $(FUZZ_DRIVERS)
FUZZ_BINS := $(FUZZ_TARGETS:%=$(FUZZ_OUT)/fuzz_%)

all: $(FUZZ_BINS)

$(FUZZ_OUT)/obj/%.o: %.c tests/fuzz/fuzz.mk
	@mkdir -p $(dir $@)
	@echo "  CC    $< (fuzz)"
	@$(FUZZ_CC) $(FUZZ_CFLAGS) -w -fsanitize=fuzzer-no-link -c -o $@ $<

$(FUZZ_OUT)/libringcast.a: $(FUZZ_LIB_OBJ)
	@rm -f $@
	@ar rcs $@ $^

$(FUZZ_OUT)/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h $(FUZZ_OUT)/libringcast.a
	@echo "  FUZZ  $@"
	@$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_WARN) -Werror -fsanitize=fuzzer -o $@ $< \
	    $(FUZZ_OUT)/libringcast.a $(FUZZ_LIBS)

.PHONY: all
-include $(FUZZ_LIB_OBJ:.o=.d) $(FUZZ_BINS:=.d)
