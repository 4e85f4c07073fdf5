# Bespoke build. `make` builds build/bespoke; `make test` installs what is
# missing, builds and runs every suite; `make demo` serves the demo shop;
# `make bench` prints the benchmark table. BUILD= picks the output folder.

CC       ?= cc
BUILD    ?= build
SAN      ?=
PKGS      = libmicrohttpd libcjson libzstd liblz4 zlib
OPT      ?= -O2 -g
CFLAGS   := $(OPT) -std=c17 -D_GNU_SOURCE -Wall -Wextra -Werror -Isrc -pthread \
            $(shell pkg-config --cflags $(PKGS) 2>/dev/null) $(SAN)
LDFLAGS  += $(SAN) -pthread
LDLIBS    = -lmicrohttpd -lcjson -llmdb -lzstd -llz4 -lz -lxxhash -lcurl -lcrypto -llapacke -lopenblas -lm
# The server binary allocates with jemalloc: its per-thread arenas keep the
# HTTP threads from contending on glibc's arena locks after heavy ingest
# (decisions 0.34 -> 0.53 of nginx in one A/B run; docs/performance.md).
# Sanitizer builds keep the sanitizer's allocator. `make MALLOC_LIB=` links
# glibc's malloc instead.
MALLOC_LIB ?= -ljemalloc

LIB_SRC   = $(sort $(wildcard src/*/*.c))
LIB_OBJ   = $(LIB_SRC:%.c=$(BUILD)/%.o)
UNIT_SRC  = $(sort $(wildcard tests/unit/test_*.c))
UNIT_BIN  = $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
FUZZ_SRC  = $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BIN  = $(FUZZ_SRC:tests/fuzz/%.c=$(BUILD)/fuzz/%)

.PHONY: all deps test unit fuzz bench demo lint clean asan

all: $(BUILD)/bespoke

deps:
	@scripts/install-deps.sh

$(BUILD)/%.o: %.c $(wildcard src/*/*.h)
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	@$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/libbespoke.a: $(LIB_OBJ)
	@rm -f $@
	@ar rcs $@ $^

$(BUILD)/bespoke: $(BUILD)/src/main.o $(BUILD)/libbespoke.a
	@echo "  LINK    $@"
	@$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(if $(SAN),,$(MALLOC_LIB))

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libbespoke.a $(wildcard src/*/*.h tests/unit/*.h)
	@mkdir -p $(dir $@)
	@echo "  TEST    $@"
	@$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libbespoke.a $(LDLIBS) -lcmocka

unit: $(UNIT_BIN) $(BUILD)/bespoke

# libFuzzer targets: clang only, ASan + UBSan, each linked with the library.
FUZZ_CFLAGS = -std=c17 -D_GNU_SOURCE -g -O1 -Isrc -pthread \
              $(shell pkg-config --cflags $(PKGS) 2>/dev/null) \
              -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
fuzz: $(FUZZ_BIN)
$(BUILD)/fuzz/%: tests/fuzz/%.c $(LIB_SRC) $(wildcard src/*/*.h)
	@mkdir -p $(dir $@)
	@echo "  FUZZ    $@"
	@clang $(FUZZ_CFLAGS) -o $@ $< $(LIB_SRC) $(LDLIBS)

# The sanitizer build used by `make test` for unit and integration suites.
asan:
	$(MAKE) BUILD=$(BUILD)/asan CC=clang \
	  SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer" \
	  OPT="-O1 -g" unit

test: deps
	$(MAKE) unit
	$(MAKE) asan
	$(MAKE) fuzz
	tests/run-all.sh $(BUILD)

bench: deps all
	bench/run.sh $(BUILD)

demo: deps all
	scripts/demo.sh $(BUILD)

lint:
	clang-format --dry-run -Werror $(wildcard src/*.c src/*/*.c src/*/*.h tests/unit/*.c tests/unit/*.h tests/fuzz/*.c bench/*.c)
	cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability \
	  --inline-suppr --suppress=missingIncludeSystem -Isrc src

clean:
	rm -rf $(BUILD)
