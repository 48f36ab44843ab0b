# Two commands on a fresh clone: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo browser postgres test bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/residentview demo --out demo-output

# The review page's tests drive a real browser: Debian's chromium (Playwright's own browser
# download needs the internet, which CI lacks). Installed when absent; a failed install stops here.
browser:
	command -v chromium >/dev/null || (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium)

# The database tests start a throwaway cluster of Debian's PostgreSQL server (its programs live
# in /usr/lib/postgresql/<version>/bin, not on PATH). Installed when absent.
postgres:
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null || (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql)

test: $(STAMP) browser postgres
	$(BIN)/python -m pytest -n 2 -q

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py --datasets synthetic-10k febrl3 febrl4

clean:
	rm -rf $(VENV) demo-output residentview-output .pytest_cache
