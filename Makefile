# Convenience targets; cargo does the building.
.PHONY: all man check demo bench install uninstall

all:
	cargo build --release

# The man pages, from doc/ with Sphinx, into target/man.
man:
	scripts/man

# The test command: what CI runs.
check:
	scripts/check

# Build, start a small Flux instance with the module, run jobs, print a scrape.
demo:
	scripts/demo

bench:
	scripts/bench-scrape

# Into flux-core's directories (pkg-config), honouring PREFIX and DESTDIR:
# see scripts/install.
install: all man
	scripts/install install

uninstall:
	scripts/install uninstall
