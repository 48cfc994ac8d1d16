# `make bench`: the benchmarks under bench/ (bench/run_all.py), each starting its own Temporal dev
# server, workers, bot and fakes; results in bench/results/<time>-<kind>/. Only a full run (all of
# them, not quick) writes docs/benchmarks.md; the others print their table and leave the doc alone.
#   BENCH_QUICK=1 make bench     fewer samples and shorter windows, for development (prints only)
#   make bench BENCH="ack idle"  only those benchmarks (prints only)
# Never part of `make test`: timings on a shared machine are not pass/fail material for CI.

bench: $(STAMP)
	$(BIN)/python -m bench.run_all $(BENCH)

# `make bench-compare REF=<git ref>`: REF (in a temporary git worktree) and the working tree, run in turns
# (A, B, A, B …) in one run; prints each figure's ratio B / A with its spread over the rounds.
#   make bench-compare REF=f48c98c BENCH="throughput overhead" ROUNDS=3   (BENCH_QUICK=1 for a try-out)
.PHONY: bench-compare
bench-compare: $(STAMP)
	@test -n "$(REF)" || { echo 'usage: make bench-compare REF=<git ref> [BENCH="throughput overhead"] [ROUNDS=3]'; exit 2; }
	$(BIN)/python -m bench.compare $(REF) --rounds $(or $(ROUNDS),3) $(BENCH)
