# Two commands on a fresh machine:  `make demo`  and  `make test`.
# Each builds its own virtual environment first: a torch + torchvision pair pinned before
# the package, so a loose requirement never pulls a newer (untested) build.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
TORCH  ?= torch==2.14.1 torchvision==0.29.1
OUT    ?= demo_out

# Tests never need a display; the demo opens glue only where one exists.
TESTENV := QT_QPA_PLATFORM=offscreen GLUE_TESTING=True MPLBACKEND=Agg

.PHONY: venv demo test lint bench clean

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH)
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/ssclump demo --out $(OUT)

test: $(STAMP)
	$(BIN)/ruff check glue_ssclump tests benchmarks
	$(TESTENV) $(BIN)/python -m pytest -n 2 --dist loadfile -p no:cacheprovider -m "not serial" tests
	$(TESTENV) $(BIN)/python -m pytest -p no:cacheprovider -m serial tests

lint: $(STAMP)
	$(BIN)/ruff check glue_ssclump tests benchmarks

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) $(OUT) build *.egg-info
