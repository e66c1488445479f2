# Every target creates .venv and installs the package into it when missing (needs python3 and make).
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: install run test test-slow bench bench-checkpoint clean

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# The main job: a short real MAGE-TD3 training run on Pendulum (paper settings, 2 seeds, 500 steps).
run: $(STAMP)
	$(VENV)/bin/magejax train --env pendulum --algo mage --seeds 2 --steps 500 --eval-every 100 \
		--out runs/quickstart --overwrite

# CI-sized test suite (tiny networks, few steps); `slow` learning checks are excluded.
test: $(STAMP)
	$(PY) -m pytest -q

# Long learning checks only.
test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow

bench: $(STAMP)
	$(PY) benchmarks/bench.py

# Checkpoint size and save/restore time at paper size, and the overhead on a small run.
bench-checkpoint: $(STAMP)
	$(PY) benchmarks/checkpoint_bench.py

clean:
	rm -rf $(VENV) runs .pytest_cache
