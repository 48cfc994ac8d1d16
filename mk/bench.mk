# `make bench`: the benchmarks under bench/ (bench/run_all.py), each starting its own Temporal dev
# server, workers, bot and fakes; prints the table and writes docs/benchmarks.md.
#   BENCH_QUICK=1 make bench     fewer samples and shorter windows, for development
#   make bench BENCH="ack idle"  only those benchmarks (the report keeps the others' last results)
# Never part of `make test`: timings on a shared machine are not pass/fail material for CI.

bench: $(STAMP)
	$(BIN)/python -m bench.run_all $(BENCH)
