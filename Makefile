.PHONY: run test bench
run:   ## set up and run the proxy (fake upstream when OPENAI_API_KEY is unset)
	bash scripts/run.sh
test:  ## set up and run every test
	bash scripts/test.sh
