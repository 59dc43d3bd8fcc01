bench/fftconv_crossover: bench/fftconv_crossover.c src/ops/ops.h
src/ops/ops.h:
