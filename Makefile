# Convenience targets; cargo does the building.
.PHONY: all check demo bench

all:
	cargo build --release

# The test command: what CI runs.
check:
	scripts/check

# Build, start a small Flux instance with the module, run jobs, print a scrape.
demo:
	scripts/demo

bench:
	scripts/bench-scrape
