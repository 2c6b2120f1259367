# verity — common entry points. Everything builds with cargo; nothing else is needed.
CARGO ?= cargo
VERITY := target/release/verity
SEED ?= 1

.PHONY: build test bench check-demo test-raft hunt-raft test-raft-real bench-real test-dynamo test-spanner lint fmt clean

build:
	$(CARGO) build --release -p harness

# Every test of the workspace.
test:
	$(CARGO) test --workspace --release

# Benchmarks (release): the linearizability checker, the simulator and the report.
bench:
	$(CARGO) bench -p checkers --bench linearizability
	$(CARGO) bench -p harness --bench simulation
	$(CARGO) bench -p harness --bench report

# Real-mode throughput: the highest rate 3- and 5-node raft sustain on loopback, with latency.
bench-real:
	$(CARGO) bench -p harness --bench real_throughput

# Checks the example histories: one valid, one invalid (with its explanation).
check-demo: build
	-$(VERITY) check --model cas-register examples/cas-register-valid.jsonl examples/cas-register-invalid.jsonl

# Raft under every fault for 60 simulated seconds; exits non-zero on a violation.
test-raft: build
	$(VERITY) test raft --nodes 5 --time-limit 60 --nemesis all --seed $(SEED)

# Regression hunting: Raft under every fault on seeds 1..$(SEEDS) (30 simulated seconds each, on
# every core); lists failing seeds with their repro command, stores the first few.
SEEDS ?= 1000
hunt-raft: build
	$(VERITY) test raft --nodes 5 --time-limit 30 --nemesis all --seeds 1..$(SEEDS)

# Raft as 3 real processes on loopback for 30 wall-clock seconds: partitions (through the relay),
# SIGKILL + restart, SIGSTOP/SIGCONT and clock faults; exits non-zero on a violation.
test-raft-real: build
	$(VERITY) test raft --mode real --nodes 3 --time-limit 30 --nemesis partition,kill,pause,clock --nemesis-interval 2 --seed $(SEED)

# Dynamo (sloppy quorums, version vectors) under every fault for 60 simulated seconds, checked
# by the version-vector checker; exits non-zero on a violation.
test-dynamo: build
	$(VERITY) test dynamo --workload vv-kv --nodes 5 --time-limit 60 --nemesis all --seed $(SEED)

# Spanner (TrueTime, commit wait) under every fault with every clock within epsilon (7 ms), both
# workloads, 30 simulated seconds each: exits non-zero on a violation. Then one clock is driven
# 3-10 x epsilon off, which the external-consistency checker must catch (exit status 1).
SPANNER_WITHIN_EPSILON := --time-limit 30 --nemesis all --clock-max-ms 7 --nemesis-interval 2 --seed $(SEED)
test-spanner: build
	$(VERITY) test spanner --workload list-append $(SPANNER_WITHIN_EPSILON)
	$(VERITY) test spanner --workload bank $(SPANNER_WITHIN_EPSILON)
	$(VERITY) test spanner --workload list-append --time-limit 30 --nemesis clock-beyond-epsilon \
	  --nemesis-interval 2 --seed $(SEED); status=$$?; if [ $$status -ne 1 ]; then \
	  echo "expected clock-beyond-epsilon to be caught (exit 1), got exit $$status"; exit 1; fi

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

clean:
	$(CARGO) clean
