# seqlab — `make` builds ./seqlab and build/libseqlab.a; `make test` and
# `make demo` first make sure the Debian packages are there (scripts/deps.sh).

CC      ?= gcc
PKGS    := openblas yaml-0.1 libpcre2-8
OPT     ?= -O3 -march=native
CFLAGS  += $(OPT) -std=c11 -D_GNU_SOURCE -fopenmp -Wall -Wextra -MMD -MP $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS  += $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lm
LDFLAGS += -fopenmp

LIB_SRC  := $(wildcard src/core/*.c src/ops/*.c src/mixers/*.c src/ffn/*.c src/model/*.c src/train/*.c src/data/*.c src/plot/*.c)
CLI_SRC  := $(wildcard src/cli/*.c)
TEST_SRC := $(wildcard tests/*.c)
LIB_OBJ  := $(LIB_SRC:%.c=build/%.o)
CLI_OBJ  := $(CLI_SRC:%.c=build/%.o)
TEST_OBJ := $(TEST_SRC:%.c=build/%.o)

.PHONY: all deps test demo bench clean

all: seqlab tests/unit

build/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Isrc -c $< -o $@

build/libseqlab.a: $(LIB_OBJ)
	ar rcs $@ $^

seqlab: $(CLI_OBJ) build/libseqlab.a
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

tests/unit: $(TEST_OBJ) build/libseqlab.a
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

deps:
	@scripts/deps.sh

test: deps
	@$(MAKE) --no-print-directory all
	@tests/run.sh

demo: deps
	@$(MAKE) --no-print-directory seqlab
	@scripts/demo.sh

bench: deps
	@$(MAKE) --no-print-directory seqlab
	@bench/compare.sh

clean:
	rm -rf build seqlab tests/unit

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(TEST_OBJ:.o=.d)
