# seqlab — `make` builds ./seqlab and build/libseqlab.a; `make test` and
# `make demo` first make sure the Debian packages are there (scripts/deps.sh).
# `make asan` builds the unit tests and seqlab with AddressSanitizer and UBSan
# into build-asan/ and runs the unit tests and tests/sanitize.sh (`make test`
# runs them too).

# The GEMM backend, chosen by measurement (bench/gemm.sh, docs/benchmarks.md):
# oneDNN by default; `make GEMM=openblas` builds against OpenBLAS instead
# (into build-openblas/, so the two builds do not mix objects).
GEMM    ?= onednn
CC      ?= gcc
PKGS    := yaml-0.1 libpcre2-8 lapacke fftw3f libpng sndfile
OPT     ?= -O3 -march=native
ifeq ($(GEMM),onednn)
GEMM_LIBS := -ldnnl
else ifeq ($(GEMM),openblas)
GEMM_DEB  := libopenblas-openmp-dev
PKGS      += openblas
BUILD     ?= build-openblas
else
$(error GEMM must be onednn or openblas, not '$(GEMM)')
endif
# MPI data parallelism (src/train/dist.c) when OpenMPI is installed (scripts/deps.sh installs it);
# `make MPI=0` builds one-rank seqlab without it.
MPI     ?= $(shell pkg-config --exists ompi-c 2>/dev/null && echo 1 || echo 0)
ifeq ($(MPI),1)
PKGS    += ompi-c
CFLAGS  += -DSEQLAB_MPI
endif
CFLAGS  += $(OPT) -std=c11 -D_GNU_SOURCE -fopenmp -Wall -Wextra -MMD -MP $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS  += $(shell pkg-config --libs $(PKGS) 2>/dev/null) $(GEMM_LIBS) -lm
LDFLAGS += -fopenmp

GEMM_SRC := src/core/gemm_$(subst openblas,cblas,$(GEMM)).c
LIB_SRC  := $(filter-out src/core/gemm_%.c,$(wildcard src/core/*.c src/ops/*.c src/mixers/*.c src/ffn/*.c src/model/*.c \
                src/train/*.c src/data/*.c src/plot/*.c src/nn/*.c src/tasks/*.c)) $(GEMM_SRC)
CLI_SRC  := $(wildcard src/cli/*.c)
TEST_SRC := $(wildcard tests/*.c)
BUILD    ?= build
UNIT     ?= tests/unit
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/%.o)
TEST_OBJ := $(TEST_SRC:%.c=$(BUILD)/%.o)

.PHONY: all deps test demo bench asan asan-build fuzz fuzz-deps clean

all: seqlab $(UNIT)

# Where the long convolution switches from the direct sum to FFTW; the
# mixture of experts' GEMMs against the sgemm peak.
bench/fftconv_crossover bench/moe_gemm: bench/%: bench/%.c $(BUILD)/libseqlab.a
	$(CC) $(CFLAGS) -Isrc $< $(BUILD)/libseqlab.a $(LDFLAGS) $(LDLIBS) -o $@

# MPI_Allreduce's time against the message size (docs/distributed.md).
bench/allreduce: bench/allreduce.c
	$(CC) -O2 -Wall -Wextra $(shell pkg-config --cflags ompi-c) $< -o $@ $(shell pkg-config --libs ompi-c)

# The side-by-side timing of the GEMM libraries (each loaded with dlopen).
bench/gemm_backends: bench/gemm_backends.c
	$(CC) -O2 -fopenmp -Wall -Wextra $< -o $@ -ldnnl -ldl

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Isrc -c $< -o $@

$(BUILD)/libseqlab.a: $(LIB_OBJ)
	ar rcs $@ $^

# ./seqlab and tests/unit are the same names for either backend: a stamp
# naming the backend of the last link makes a switch relink them.
GEMM_STAMP := .gemm-$(GEMM)-mpi$(MPI)
$(GEMM_STAMP):
	@rm -f .gemm-*
	@touch $@
$(BUILD)/src/train/dist.o: $(GEMM_STAMP)

seqlab: $(CLI_OBJ) $(BUILD)/libseqlab.a $(GEMM_STAMP)
	$(CC) $(LDFLAGS) $(filter-out $(GEMM_STAMP),$^) $(LDLIBS) -o $@

$(UNIT): $(TEST_OBJ) $(BUILD)/libseqlab.a $(GEMM_STAMP)
	$(CC) $(LDFLAGS) $(filter-out $(GEMM_STAMP),$^) $(LDLIBS) -o $@

deps:
	@scripts/deps.sh $(GEMM_DEB)

test: deps
	@$(MAKE) --no-print-directory all asan-build
	@tests/run.sh

demo: deps
	@$(MAKE) --no-print-directory seqlab
	@scripts/demo.sh

bench: deps
	@$(MAKE) --no-print-directory seqlab
	@bench/compare.sh

SAN := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
# (always against oneDNN: build-asan/ holds one backend's objects)
asan-build:
	@$(MAKE) --no-print-directory GEMM=onednn BUILD=build-asan UNIT=build-asan/unit OPT="-O1 -g -march=native $(SAN)" \
		LDFLAGS="-fopenmp $(SAN)" build-asan/unit build-asan/seqlab
asan: deps asan-build
	@ASAN_OPTIONS=detect_leaks=0:allocator_may_return_null=1 build-asan/unit
	@tests/sanitize.sh

# ./seqlab's twin in a build directory (the sanitized build-asan/seqlab).
$(BUILD)/seqlab: $(CLI_OBJ) $(BUILD)/libseqlab.a $(GEMM_STAMP)
	$(CC) $(LDFLAGS) $(filter-out $(GEMM_STAMP),$^) $(LDLIBS) -o $@

clean:
	rm -rf build build-asan build-openblas build-fuzz seqlab tests/unit bench/gemm_backends .gemm-*

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(TEST_OBJ:.o=.d)

# libFuzzer targets for every parser (tests/fuzz/), built with clang,
# AddressSanitizer and UBSan into build-fuzz/. `make fuzz` runs each for
# FUZZ_SECONDS (default 20) from its committed seed corpus
# (tests/fuzz/corpus/<target>/), with inputs up to 64 KiB (longer than any
# line buffer); new inputs go to build-fuzz/corpus/<target>/, crashes to
# build-fuzz/crash-*. scripts/fuzz_long.sh runs them for hours.
FUZZ_SECONDS ?= 20
FUZZ_TARGETS := $(patsubst tests/fuzz/%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BUILD   := build-fuzz
# the targets write each input to a file: in memory where /dev/shm is there
FUZZ_TMPDIR  := $(if $(wildcard /dev/shm),/dev/shm,$(or $(TMPDIR),/tmp))
FUZZ_FLAGS   := -O1 -g -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined -fopenmp \
                -std=c11 -D_GNU_SOURCE -Wall -Wno-unused-command-line-argument -Wno-pass-failed $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
FUZZ_LIB_OBJ := $(LIB_SRC:%.c=$(FUZZ_BUILD)/%.o) $(FUZZ_BUILD)/src/cli/args.o

$(FUZZ_BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	clang $(FUZZ_FLAGS) -Isrc -c $< -o $@

# clang brings libFuzzer; GNU time measures scripts/fuzz_long.sh's CPU seconds.
fuzz-deps:
	@scripts/deps.sh clang time $(GEMM_DEB)

$(FUZZ_BUILD)/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h $(FUZZ_LIB_OBJ)
	clang $(FUZZ_FLAGS) -fsanitize=fuzzer -Isrc $< $(FUZZ_LIB_OBJ) -fopenmp $(LDLIBS) -o $@

fuzz: fuzz-deps $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/%)
	@for t in $(FUZZ_TARGETS); do \
	    mkdir -p $(FUZZ_BUILD)/corpus/$$t; \
	    echo "fuzz: $$t for $(FUZZ_SECONDS) s"; \
	    TMPDIR=$(FUZZ_TMPDIR) ASAN_OPTIONS=allocator_may_return_null=1:detect_leaks=1 $(FUZZ_BUILD)/$$t -max_total_time=$(FUZZ_SECONDS) -max_len=65536 \
	        -rss_limit_mb=4096 -print_final_stats=1 -artifact_prefix=$(FUZZ_BUILD)/crash-$$t- \
	        $(FUZZ_BUILD)/corpus/$$t tests/fuzz/corpus/$$t 2>&1 | grep -E "^(stat::number_of_executed_units|==|SUMMARY)|ERROR" ; \
	    ls $(FUZZ_BUILD)/crash-$$t-* >/dev/null 2>&1 && { echo "fuzz: $$t found a crash"; exit 1; }; \
	done; echo "fuzz: no crashes"
