# Developer shortcuts. CI runs .ci/run, which runs the same checks.
.PHONY: all fmt clippy test test-live doc demo

all: fmt clippy test

fmt:
	cargo fmt --all --check

clippy:
	cargo clippy --workspace --all-targets -- -D warnings

# The one command that runs every test (README "Running the tests").
test:
	cargo test --workspace

# The end-to-end suites against a real Kong started from fixtures/compose (see its README).
test-live:
	KONG_ADMIN_URL=$${KONG_ADMIN_URL:-http://localhost:8001} \
	KONG_PROXY_URL=$${KONG_PROXY_URL:-http://localhost:8000} \
	cargo test -p kong-switch-tests

doc:
	cargo doc --workspace --no-deps

demo:
	cargo run -p kong-switch-tests --bin demo
