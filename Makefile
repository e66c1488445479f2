# Every target creates .venv and installs the package into it when missing (needs python3 and make).
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: install run test test-slow bench bench-checkpoint experiments-cpu clean

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# The main job: MAGE-TD3 learns Pendulum with the cpu preset (2 seeds, 5000 env steps, a few
# minutes on a 2-core CPU); prints the final return and where the learning curve is.
run: $(STAMP)
	$(VENV)/bin/magejax train --env pendulum --algo mage --preset cpu --seeds 2 --steps 5000 \
		--eval-every 250 --out runs/quickstart --overwrite

# CI-sized test suite (tiny networks, few steps); `slow` learning checks are excluded. Most tests
# are dominated by XLA compilation, which is single-threaded: pytest-xdist runs one worker per
# core (at most 4, each holds its own JAX runtime); an idle worker steals tests from a busy one.
test: $(STAMP)
	$(PY) -m pytest -q -n auto --maxprocesses 4 --dist worksteal

# Long learning checks only.
test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow

bench: $(STAMP)
	$(PY) benchmarks/bench.py

# Checkpoint size and save/restore time at paper size, and the overhead on a small run.
bench-checkpoint: $(STAMP)
	$(PY) benchmarks/checkpoint_bench.py

# Every experiment script at cpu scale (measured to take up to ~12 min each on an idle 2-core
# CPU, see experiments/README.md); results, plots and logs in experiments/results/<figure>/.
# A script that cannot run (e.g. Table 1 without the Brax HalfCheetah) does not stop the others.
EXPERIMENTS := fig2_sample_efficiency fig3_action_gradient_error fig4_learned_reward \
	fig5_lambda_zero fig7_model_capacity fig8_lambda_sweep table1_halfcheetah
experiments-cpu: $(STAMP)
	@status=0; for e in $(EXPERIMENTS); do \
		$(PY) experiments/$$e.py --scale cpu || { echo "experiments-cpu: $$e failed"; status=1; }; \
	done; exit $$status

clean:
	rm -rf $(VENV) runs .pytest_cache
