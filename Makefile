PYTHON ?= $(if $(wildcard .venv/bin/python),.venv/bin/python,python3)
BENCH_ARGS ?=

.PHONY: run test bench bench-quick

run:   ## set up and run the proxy (fake upstream when OPENAI_API_KEY is unset)
	bash scripts/run.sh

test:  ## set up and run every test
	bash scripts/test.sh

# Direct vs through the proxy (SQLite and Redis stores), medians of 5 repeats: ~10 minutes.
# Same as: python -m bench [--repeats N] [--duration S] [--compare-url URL]
bench:
	$(PYTHON) -m bench $(BENCH_ARGS)

# A few hundred requests per scenario, one repeat: checks the harness, not the proxy.
bench-quick:
	$(PYTHON) -m bench --quick $(BENCH_ARGS)
