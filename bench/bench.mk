# Benchmarks: Palaver (standalone and attached to Express through the Node addon)
# against the Node Socket.IO 4.8 server and a bare WebSocket broadcaster, and seed
# 002's room-chat app on palaver/socket.io against the same file on Node Socket.IO.
# See bench/README.md.
#
#   make bench        quick sizes, all six servers (about a quarter of an hour) -> bench/results/
#   make bench-full   the large sizes (100k idle connections, long steps) -> bench/results/
#   make bench-smoke  tiny sizes; fails unless every server completes every scenario
#                     with zero loss (no timing checks) -> target/bench-smoke/
#
# Included by the root Makefile, or run alone: make -f bench/bench.mk bench-smoke
# (from the repository root). BENCH_ARGS passes extra flags to `palaver-bench run`,
# e.g. BENCH_ARGS="--servers palaver,socketio-express --scenarios fanout".

# Included before the root Makefile's own targets, these must not become its
# default goal.
BENCH_PREVIOUS_DEFAULT_GOAL := $(.DEFAULT_GOAL)

CARGO      ?= cargo
NPM        ?= npm
BENCH_ARGS ?=
BENCH_BIN  := target/release/palaver-bench

.PHONY: bench bench-full bench-smoke bench-build bench-binaries bench-node-addon

bench: bench-build
	$(BENCH_BIN) run --preset quick --out bench/results $(BENCH_ARGS)

bench-full: bench-build
	$(BENCH_BIN) run --preset full --out bench/results $(BENCH_ARGS)

bench-smoke: bench-build
	$(BENCH_BIN) run --preset smoke --out target/bench-smoke --check $(BENCH_ARGS)

# Everything the runner starts: the release server and harness, the release Node
# addon, and the Node servers' packages.
bench-build: bench-binaries bench-node-addon bench/node_modules/.installed

bench-binaries:
	$(CARGO) build --release -p palaver-server -p palaver-bench

# The addon's build tool (@napi-rs/cli) comes with node/'s dev dependencies.
node/node_modules/@napi-rs/cli/package.json:
	cd node && if [ -f package-lock.json ]; then $(NPM) ci --no-audit --no-fund; \
	           else $(NPM) install --no-audit --no-fund; fi

# The release addon the bench measures, in a directory of its own: node/native/
# holds whichever build ran last (the functional tests build a debug addon there),
# so the runner loads this copy instead (NAPI_RS_NATIVE_LIBRARY_PATH). The same
# command and flags as node/'s `npm run build`, so cargo's artifacts are shared;
# only the output directory differs, and node/ is left as it is.
BENCH_ADDON_DIR := target/bench-addon

bench-node-addon: node/node_modules/@napi-rs/cli/package.json
	cd node && CARGO_PROFILE_RELEASE_STRIP=symbols npx napi build --platform --release --strip \
	  --output-dir ../$(BENCH_ADDON_DIR) --no-js --dts binding.d.ts --no-dts-header

# The lockfile also records ../node's manifest; should node/package.json have moved
# on since, `npm ci` refuses and `npm install` brings the lockfile up to date.
bench/node_modules/.installed: bench/package.json bench/package-lock.json node/package.json
	cd bench && ( $(NPM) ci --no-audit --no-fund || \
	  { echo "bench: npm ci failed; updating bench/package-lock.json with npm install"; \
	    $(NPM) install --no-audit --no-fund; } )
	@touch $@

ifeq ($(BENCH_PREVIOUS_DEFAULT_GOAL),)
ifneq ($(words $(MAKEFILE_LIST)),1)
.DEFAULT_GOAL :=
endif
else
.DEFAULT_GOAL := $(BENCH_PREVIOUS_DEFAULT_GOAL)
endif
