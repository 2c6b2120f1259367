# verity — common entry points. Everything builds with cargo; nothing else is needed.
CARGO ?= cargo
VERITY := target/release/verity
SEED ?= 1

.PHONY: build test bench check-demo test-raft test-raft-real bench-real test-dynamo lint fmt clean

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

# Raft as 3 real processes on loopback for 30 wall-clock seconds: partitions (through the relay),
# SIGKILL + restart, SIGSTOP/SIGCONT and clock faults; exits non-zero on a violation.
test-raft-real: build
	$(VERITY) test raft --mode real --nodes 3 --time-limit 30 --nemesis partition,kill,pause,clock --nemesis-interval 2 --seed $(SEED)

# Dynamo (sloppy quorums, version vectors) under every fault for 60 simulated seconds, checked
# by the version-vector checker; exits non-zero on a violation.
test-dynamo: build
	$(VERITY) test dynamo --workload vv-kv --nodes 5 --time-limit 60 --nemesis all --seed $(SEED)

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

clean:
	$(CARGO) clean
