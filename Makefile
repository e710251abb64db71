# Palaver: one command to run the chat server, one to pass every test.
#
#   make run     build and start the standalone chat server on http://localhost:3000
#   make test    install what the tests need, then run every test (what CI runs)
#
# `make help` lists the other targets.

CARGO ?= cargo
NPM   ?= npm
ARGS  ?=

.PHONY: help run test setup-test lint rust-test server-debug check-client-script \
        header check-header e2e-test browser-test cluster-test c-test node-test \
        conformance-test conformance-official packaging-test apps-test node node-debug \
        check-node-binding soak

help:
	@echo "make run             build and start the chat server on :3000 (ARGS=... for flags)"
	@echo "make test            everything CI runs (installs what is missing)"
	@echo "make node            build the Node addon (release) and the Express/Koa examples"
	@echo "make header          regenerate include/palaver.h"
	@echo "make bench           quick benchmark run, results in bench/results/"
	@echo "make bench-full      large benchmark sizes"
	@echo "make soak            the junk battery for 15 minutes per face (JUNK_SECONDS=..., JUNK_SEED=...)"
	@echo "parts of make test:  lint rust-test check-header check-client-script e2e-test"
	@echo "                     browser-test cluster-test c-test node-test conformance-test"
	@echo "                     packaging-test apps-test bench-smoke"
	@echo "make conformance-official SUITE=<socket.io-protocol checkout>/test-suite"
	@echo "                     the official Socket.IO protocol suite (tests/conformance/README.md)"

run:
	$(CARGO) run --release -p palaver-server -- $(ARGS)

# The functional tests use debug builds (one shared debug build of the workspace
# serves cargo test, the server the end-to-end tests start, libpalaver for the C
# tests and the Node addon): they build fastest and keep debug assertions on.
# Only bench-smoke builds release, because it measures.
test: setup-test lint rust-test check-header check-client-script e2e-test browser-test \
      cluster-test c-test node-test conformance-test packaging-test apps-test bench-smoke

# ---- setup -------------------------------------------------------------------

# Debian packages the tests use, installed when missing (as root or with sudo).
setup-test: tests/node_modules/.installed
	@scripts/ensure-debian-packages chromium redis-server valgrind gcc sqlite3

tests/node_modules/.installed: tests/package.json tests/package-lock.json
	cd tests && $(NPM) ci --no-audit --no-fund
	@touch $@

node/node_modules/.installed: node/package.json node/package-lock.json
	cd node && $(NPM) ci --no-audit --no-fund
	@touch $@

server-debug:
	$(CARGO) build -p palaver-server

# ---- Rust ----------------------------------------------------------------------

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

rust-test:
	$(CARGO) test --workspace

# ---- C header ------------------------------------------------------------------

CBINDGEN_VERSION := 0.29.4
CBINDGEN := target/tools/cbindgen-$(CBINDGEN_VERSION)/bin/cbindgen

$(CBINDGEN):
	$(CARGO) install cbindgen --version $(CBINDGEN_VERSION) --locked --root target/tools/cbindgen-$(CBINDGEN_VERSION)

# Regenerates include/palaver.h from ffi/src.
header: $(CBINDGEN)
	$(CBINDGEN) --quiet --config ffi/cbindgen.toml --crate palaver-ffi --output include/palaver.h ffi

# The committed header must be what the pinned cbindgen makes of ffi/src.
check-header: $(CBINDGEN)
	$(CBINDGEN) --quiet --config ffi/cbindgen.toml --crate palaver-ffi --output target/palaver.h.generated ffi
	diff -u include/palaver.h target/palaver.h.generated

# ---- end-to-end ----------------------------------------------------------------

# The engine serves the official socket.io-client bundle; it must be the very file
# of the pinned npm package (see core/assets/README.md).
check-client-script: tests/node_modules/.installed
	cmp core/assets/socket.io.min.js tests/node_modules/socket.io-client/dist/socket.io.min.js
	cmp core/assets/socket.io.esm.min.js tests/node_modules/socket.io-client/dist/socket.io.esm.min.js

e2e-test: server-debug tests/node_modules/.installed
	cd tests && node --test --test-concurrency=2 e2e/

browser-test: server-debug setup-test
	cd tests && node --test browser/

# Several standalone nodes sharing a private redis-server (started by the tests on a
# free port with its data in a temporary directory; never the machine's own Redis).
# host.test.js drives a node through the Node addon in its own process: the addon
# is built first, so that nothing skips on a clean clone.
cluster-test: server-debug setup-test node-debug
	cd tests && node --test --test-concurrency=1 cluster/

# The C test programs (gcc -Wall -Wextra -Werror) against libpalaver, also under
# valgrind; the tests build them with tests/c/Makefile.
c-test: setup-test
	$(CARGO) build -p palaver-ffi
	cd tests && node --test --test-concurrency=2 c/

# ---- Node ----------------------------------------------------------------------

node-debug: node/node_modules/.installed
	cd node && $(NPM) run build:debug

# The generated binding loader and declarations are committed; a build must not
# change them.
check-node-binding: node-debug
	git diff --exit-code -- node/native/binding.js node/native/binding.d.ts

node-test: node-debug check-node-binding
	cd node && node --test --test-concurrency=1 test/

# Socket.IO protocol conformance of palaver/socket.io: the reference server of the
# official test suite (tests/conformance/server.js, on a free port) against the
# project's own test of the same behaviours over both transports.
conformance-test: node-debug tests/node_modules/.installed
	cd tests && node --test --test-concurrency=1 conformance/

# The official suite itself (github.com/socketio/socket.io-protocol, test-suite/; never
# committed here, see tests/conformance/README.md): SUITE is a checkout of it with its
# npm packages installed. It expects the server on localhost:3000.
SUITE ?=

# The checks come first, so that a missing SUITE fails before the addon is built. The
# server's output goes to a file of its own, shown if it does not start.
conformance-official:
	@if [ -z "$(SUITE)" ]; then \
	  echo "conformance-official: set SUITE=/path/to/socket.io-protocol/test-suite" \
	       "(a checkout with 'npm ci' run in it; see tests/conformance/README.md)" >&2; exit 2; fi
	@if [ ! -f "$(SUITE)/test-suite.js" ] || [ ! -d "$(SUITE)/node_modules" ]; then \
	  echo "conformance-official: $(SUITE) is not socket.io-protocol's test-suite/ with its" \
	       "npm packages installed (run 'npm ci' there)" >&2; exit 2; fi
	@$(MAKE) --no-print-directory node-debug
	@log=$$(mktemp -t palaver-conformance-server.XXXXXX); \
	PORT=3000 node tests/conformance/server.js > $$log 2>&1 & pid=$$!; \
	trap 'kill $$pid 2>/dev/null; wait $$pid 2>/dev/null; rm -f $$log' EXIT; \
	for i in $$(seq 1 600); do \
	  if grep -q 'listening on' $$log || ! kill -0 $$pid 2>/dev/null; then break; fi; \
	  sleep 0.1; \
	done; \
	if ! grep -q 'listening on' $$log || ! kill -0 $$pid 2>/dev/null; then \
	  echo "conformance-official: the reference server did not start (is port 3000 taken?):" >&2; \
	  cat $$log >&2; exit 1; fi; \
	echo "tests/conformance/server.js listens on port 3000; running the suite in $(SUITE)"; \
	cd "$(SUITE)" && npx --no mocha test-suite.js

# The package as a user installs it: `npm pack` of node/ (the addon just built inside),
# installed with express 5 from the registry into a fresh app in a temporary directory,
# which must resolve palaver, palaver/socket.io and palaver/ws (CommonJS and ESM) and
# chat with the npm socket.io-client and ws. Needs the npm registry.
packaging-test: node-debug tests/node_modules/.installed
	cd tests && node --test packaging/

# The tutorial apps (examples/socketio-apps/) on palaver/socket.io and palaver/ws: their
# pages in Chromium and their wire contracts. The pages hard-code localhost:3000, so the
# apps run there one at a time; the tests fail if port 3000 is taken.
SOCKETIO_APPS := room-chat login-chat hello-chat ws-echo token-chat-express token-chat-koa
SOCKETIO_APPS_INSTALLED := $(SOCKETIO_APPS:%=examples/socketio-apps/%/node_modules/.installed)

examples/socketio-apps/%/node_modules/.installed: examples/socketio-apps/%/package.json \
                                                  examples/socketio-apps/%/package-lock.json
	cd examples/socketio-apps/$* && $(NPM) ci --no-audit --no-fund
	@touch $@

apps-test: setup-test node-debug $(SOCKETIO_APPS_INSTALLED)
	cd tests && node --test --test-concurrency=1 apps/

# The addon in release mode (symbols stripped), and the examples' packages as
# their lockfiles pin them.
node: node/node_modules/.installed
	cd node && $(NPM) run build
	cd examples/express && $(NPM) ci --no-audit --no-fund
	cd examples/koa && $(NPM) ci --no-audit --no-fund
	for app in $(SOCKETIO_APPS); do (cd examples/socketio-apps/$$app && $(NPM) ci --no-audit --no-fund) || exit 1; done

# ---- soak ----------------------------------------------------------------------

# The junk battery's long run: malformed Engine.IO/Socket.IO packets, half-open
# sockets and slowloris headers while honest clients chat, JUNK_SECONDS (default
# 900) against the standalone server, then as long against a palaver/socket.io host
# app. make test runs the same battery for 25 s and 20 s (e2e-test, conformance-test).
# Each run prints its seed; JUNK_SEED=<seed> replays its junk.
JUNK_SECONDS ?= 900

soak: server-debug node-debug tests/node_modules/.installed
	cd tests && JUNK_SECONDS=$(JUNK_SECONDS) node --test --test-concurrency=1 \
	  e2e/junk.test.js conformance/junk.test.js

# ---- benchmarks ----------------------------------------------------------------

include bench/bench.mk
