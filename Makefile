# ringcast build.
#
#   make                      build/ringcast (jemalloc, -O2, warnings are errors)
#   make SANITIZER=address    build/address/ringcast (ASan+UBSan, libc malloc)
#   make SANITIZER=thread     build/thread/ringcast  (TSan, libc malloc)
#   make test                 install deps, build, run unit + integration + JS client
#                             + Socket.IO + browser tests
#   make unit / make integration / make js / make socketio / make browser
#   make run                  install deps, build, start a node on 127.0.0.1:8080 with a local Redis
#                             (PORT=9090 moves the node, its Redis and the demo)
#   make demo                 the five example apps on three nodes; prints their URLs
#
# Every source file under the feature folders (FEATURE_DIRS) except engine/main.c
# goes into one static library that the binary and the unit tests link.

CC        ?= gcc
SANITIZER ?=
PYTHON    ?= /usr/bin/python3
# make run: the node's port, and its private Redis's (which follows PORT,
# so that one knob moves the whole demo: 8080 -> 16379, 9090 -> 17389).
PORT      ?= 8080
REDIS_PORT ?= $(shell expr $(PORT) + 8299)

BUILD := build$(if $(SANITIZER),/$(SANITIZER))

# Frame pointers stay in every build: operators profile live nodes with
# `perf record -g`, and the cost is around 1%.
CFLAGS_BASE := -std=c11 -D_GNU_SOURCE -g -fno-omit-frame-pointer -I. -Wall -Wextra -Werror -Wshadow \
               -Wstrict-prototypes -Wmissing-prototypes -Wno-unused-parameter \
               -Wformat=2 -fno-strict-aliasing -pthread -MMD -MP
LIBS      := -luring -lwslay -lcrypto -linih -lm -pthread -lhiredis -lz

ifeq ($(SANITIZER),)
  CFLAGS_OPT := -O2
  LIBS       += -ljemalloc
else ifeq ($(SANITIZER),address)
  CFLAGS_OPT := -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
  LDFLAGS    += -fsanitize=address,undefined
else ifeq ($(SANITIZER),thread)
  CFLAGS_OPT := -O1 -fno-omit-frame-pointer -fsanitize=thread -fno-sanitize-recover=all
  LDFLAGS    += -fsanitize=thread
else
  $(error SANITIZER must be empty, address or thread)
endif

CFLAGS += $(CFLAGS_BASE) $(CFLAGS_OPT)

FEATURE_DIRS := base engine net ws redis proto ops channels events admission http sio
LIB_SRC := $(filter-out engine/main.c,$(foreach d,$(FEATURE_DIRS),$(wildcard $(d)/*.c)))
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)

# The load generator (perf/ringload) and the naive one-send-per-frame server
# (perf/naive) used as the benchmark floor; perf/naive/sendfloor.c measures the
# kernel's own floor for a fan-out (no WebSocket, no server).
RL_SRC := $(filter-out perf/ringload/main.c,$(wildcard perf/ringload/*.c))
RL_OBJ := $(RL_SRC:%.c=$(BUILD)/obj/%.o)

.PHONY: all deps deps-run run demo test unit integration cluster js socketio browser clean format bench bench-short bench-eta bench-history bench-storm bench-presence bench-events bench-deflate bench-memory soak flamegraph fuzz

all: $(BUILD)/ringcast $(BUILD)/ringload $(BUILD)/naive $(BUILD)/sendfloor

# Quiet by default; `make V=1` shows the commands.
Q := $(if $(V),,@)

$(BUILD)/obj/%.o: %.c Makefile
	@mkdir -p $(dir $@)
	@$(if $(V),:,echo "  CC    $<")
	$(Q)$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/libringcast.a: $(LIB_OBJ)
	@rm -f $@
	$(Q)ar rcs $@ $^

$(BUILD)/ringcast: $(BUILD)/obj/engine/main.o $(BUILD)/libringcast.a
	@$(if $(V),:,echo "  LD    $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/libringload.a: $(RL_OBJ)
	@rm -f $@
	$(Q)ar rcs $@ $^

$(BUILD)/ringload: $(BUILD)/obj/perf/ringload/main.o $(BUILD)/libringload.a $(BUILD)/libringcast.a
	@$(if $(V),:,echo "  LD    $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/naive: $(BUILD)/obj/perf/naive/naive.o $(BUILD)/libringcast.a
	@$(if $(V),:,echo "  LD    $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

# The kernel's own floor for one small send on each of N connections.
$(BUILD)/sendfloor: $(BUILD)/obj/perf/naive/sendfloor.o
	@$(if $(V),:,echo "  LD    $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

# Unit tests of the load generator's parts: tests/unit/test_rl_*.c.
$(BUILD)/tests/test_rl_%: tests/unit/test_rl_%.c tests/unit/unit.h $(BUILD)/libringload.a $(BUILD)/libringcast.a
	@mkdir -p $(dir $@)
	@$(if $(V),:,echo "  TEST  $@")
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libringload.a $(BUILD)/libringcast.a $(LIBS)

$(BUILD)/tests/%: tests/unit/%.c tests/unit/unit.h $(BUILD)/libringcast.a
	@mkdir -p $(dir $@)
	@$(if $(V),:,echo "  TEST  $@")
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libringcast.a $(LIBS)

# Installs what the build and the tests need from Debian's packages, only
# when something is missing (a fresh machine); a no-op otherwise.
deps:
	@sh tests/deps.sh

unit: $(UNIT_BIN)
	@sh tests/run_unit.sh $(UNIT_BIN)

# PYTEST_ARGS picks tests, e.g. PYTEST_ARGS='tests/integration/test_fanout.py -k order'.
PYTEST_ARGS ?= tests/integration
integration: $(BUILD)/ringcast
	RINGCAST_BIN=$(abspath $(BUILD)/ringcast) $(PYTHON) -m pytest -q $(PYTEST_ARGS)

# The Redis-backed tests again, on a local Redis Cluster of three primaries
# with a replica each (shared by the run, emptied before each test); what
# needs one server (its outages, its ACL users) is skipped there. Empty
# CLUSTER_TESTS skips the run.
# (test_presence_redis.py, test_events_redis.py, test_control_redis.py and
# test_lifecycle_redis.py pass there too: name them in CLUSTER_TESTS.)
CLUSTER_TESTS ?= tests/integration/test_redis_cluster.py tests/integration/test_history_redis.py \
	tests/integration/test_admission.py tests/integration/test_admission_tabs.py
cluster: $(BUILD)/ringcast
	$(if $(strip $(CLUSTER_TESTS)),RINGCAST_TEST_REDIS_CLUSTER=3 RINGCAST_BIN=$(abspath $(BUILD)/ringcast) \
	    $(PYTHON) -m pytest -q -p no:cacheprovider $(CLUSTER_TESTS),@echo "cluster: skipped")

test: deps
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory unit
	@$(MAKE) --no-print-directory integration
	@$(MAKE) --no-print-directory cluster
	@$(MAKE) --no-print-directory js
	@$(MAKE) --no-print-directory socketio
	@$(MAKE) --no-print-directory browser

# The JavaScript client's tests (clients/js), on Node's test runner, against
# the binary of this build.
js: $(BUILD)/ringcast
	cd clients/js && RINGCAST_BIN=$(abspath $(BUILD)/ringcast) node --test --test-timeout 60000 test/

# Unmodified Socket.IO clients (Node and chromium) and the Redis emitter
# against two nodes (tests/socketio).
socketio: $(BUILD)/ringcast
	cd tests/socketio && RINGCAST_BIN=$(abspath $(BUILD)/ringcast) node --test --test-timeout 60000

# The five examples (examples/) in Debian's chromium, driven by puppeteer-core,
# against everything make demo starts; screenshots go to build/screenshots/.
browser: $(BUILD)/ringcast
	cd examples/test && RINGCAST_BIN=$(abspath $(BUILD)/ringcast) PYTHON=$(PYTHON) node --test --test-timeout 120000

# Every example at once: a private Redis, three nodes, the backends and the
# web server; prints the URLs (DEMO_PORT moves the web server).
DEMO_PORT ?= 8000
demo: deps-run
	@$(MAKE) --no-print-directory all
	@RINGCAST_BIN=$(abspath $(BUILD)/ringcast) exec $(PYTHON) examples/demo.py --port $(DEMO_PORT)

# The banner is printed by admission/demo.py once the node answers, with its
# real URL; the demo secrets are passed without being echoed.
run: deps-run
	@$(MAKE) --no-print-directory all
	@($(PYTHON) admission/demo.py --port $(PORT) --redis-port $(REDIS_PORT) setup &) ; \
	RINGCAST_JWT_SECRET=demo-jwt-secret RINGCAST_API_KEY=demo-api-key \
	RINGCAST_ADMISSION_SECRET=demo-admission-secret \
	exec redis/local.sh $(REDIS_PORT) $(BUILD)/ringcast --listen 127.0.0.1:$(PORT) \
	    --redis '{redis}' --public 'demo:*' $(ARGS)

# Debian packages only: make run needs none of the benchmarks' Node packages.
deps-run:
	@sh tests/deps.sh run

# ---- benchmarks, soak, flame graphs (perf/) ------------------------------------
# Only the default build (optimised, jemalloc) is meaningful to measure.
#   make bench                  full benchmark (~20-30 min), rewrites BENCHMARKS.md
#   make bench-short            the same in < 2 minutes (2k subscribers, shorter steps)
#   make bench-eta              the waiting room's first ETA against the actual wait (~3 min)
#   make bench-history          what history costs: fan-out, server CPU, Redis CPU (~3 min)
#   make bench-storm            10,000 clients of a SIGKILLed node recover on another (~2 min)
#   make bench-presence         presence_stats on a 100,000-member channel (~6 min)
#   make bench-events           client events, replies, RS256/ES256 handshakes (~2 min)
#   make bench-memory           cold memory against uWebSockets, fresh to 100k and back (~3 min)
#   make bench-deflate          permessage-deflate: bytes per delivery and fan-out, off and on (~4 min)
#   make soak                   100k connections for 10 min (SOAK_MINUTES=, SOAK_CONNS=)
#   make flamegraph SCENARIO=broadcast   (also idle, echo, churn)
SCENARIO ?= broadcast

deps-bench:
	@sh tests/deps.sh bench

bench: deps-bench all
	$(PYTHON) perf/bench.py --build $(BUILD) $(BENCH_ARGS)

bench-short: deps-bench all
	$(PYTHON) perf/bench.py --short --build $(BUILD) $(BENCH_ARGS)

bench-eta: deps-bench all
	$(PYTHON) perf/etabench.py --build $(BUILD)

bench-history: deps-bench all
	$(PYTHON) perf/historybench.py --build $(BUILD)

bench-storm: deps-bench all
	$(PYTHON) perf/stormbench.py --build $(BUILD)

bench-presence: deps-bench all
	$(PYTHON) perf/presencebench.py --build $(BUILD)

bench-events: deps-bench all
	$(PYTHON) perf/eventbench.py --build $(BUILD)

bench-memory: deps-bench all
	$(PYTHON) perf/membench.py

bench-deflate: deps-bench all
	$(PYTHON) perf/deflatebench.py --build $(BUILD)

soak: deps-bench all
	$(PYTHON) perf/soak.py --build $(BUILD)

flamegraph: deps-bench all
	sh perf/flamegraph.sh $(SCENARIO) $(BUILD)

# ---- fuzzing (tests/fuzz/) ---------------------------------------------------
#   make fuzz                   each libFuzzer driver for FUZZ_SECONDS on its corpus
#   make fuzz FUZZ_SECONDS=10 FUZZ_TARGETS="http proto"
# Built with clang (ASan + UBSan + libFuzzer) into build/fuzz/ by
# tests/fuzz/fuzz.mk; per-driver results go to build/fuzz/summary.jsonl.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= http session proto jwt atoken redis_reply config sio emitter sio_plan

fuzz:
	@sh tests/deps.sh fuzz
	@$(MAKE) --no-print-directory -f tests/fuzz/fuzz.mk FUZZ_TARGETS="$(FUZZ_TARGETS)" FEATURE_DIRS="$(FEATURE_DIRS)"
	@sh tests/fuzz/run.sh $(FUZZ_SECONDS) $(FUZZ_TARGETS)

format:
	clang-format -i $(wildcard */*.c */*.h tests/unit/*.c tests/unit/*.h)

clean:
	rm -rf build

-include $(LIB_OBJ:.o=.d) $(RL_OBJ:.o=.d) $(BUILD)/obj/engine/main.d $(BUILD)/obj/perf/ringload/main.d $(BUILD)/obj/perf/naive/naive.d $(BUILD)/obj/perf/naive/sendfloor.d
