# Every target creates .venv and installs the package into it when missing (needs python3 and make).
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: install headless-gl run test test-slow bench bench-checkpoint experiments-cpu clean

# The exact versions CI tests come from requirements.lock (every package the default, test and
# tensorboard extras pull in); pyproject.toml has only compatible ranges. Both installs take --no-deps, so that
# nothing outside the lock comes in; `pip check` then fails if the lock misses a package or no
# longer fits the ranges. After changing the ranges, re-resolve the lock with uv (`pip install uv`;
# this one was made with uv 0.13.9), which keeps the pinned versions that still fit:
#   uv pip compile pyproject.toml --extra test --extra tensorboard --universal -o requirements.lock
# (add `--upgrade-package NAME` or `--upgrade` to move to newer releases), then run `make test`.
$(STAMP): pyproject.toml requirements.lock
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q --no-deps -r requirements.lock
	$(PY) -m pip install -q --no-deps -e .
	$(PY) -m pip check
	touch $(STAMP)

install: $(STAMP)

# `magejax render` (and `train --video-every`) draw the Brax envs with MuJoCo's offscreen renderer,
# which needs OpenGL without a display: MUJOCO_GL=egl with Mesa's EGL, which renders on the CPU
# (llvmpipe) where there is no GPU. When that does not work, root gets Mesa's EGL from apt-get
# (as CI does, on a fresh machine); anyone else gets one line saying what to install.
GL_PACKAGES := libegl1 libegl-mesa0 libgl1-mesa-dri
GL_WORKS    := MUJOCO_GL=egl $(PY) -c "import mujoco; mujoco.GLContext(16, 16).free()"
headless-gl: $(STAMP)
	@$(GL_WORKS) 2>/dev/null || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			echo "headless-gl: installing Mesa's EGL for offscreen rendering: $(GL_PACKAGES)"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
				--no-install-recommends $(GL_PACKAGES) >/dev/null && $(GL_WORKS); \
		else \
			echo "headless-gl: offscreen OpenGL (MUJOCO_GL=egl) does not work here; install Mesa's EGL: sudo apt-get install $(GL_PACKAGES)" >&2; \
			exit 1; \
		fi; }

# The main job: MAGE-TD3 learns Pendulum with the cpu preset (2 seeds, 5000 env steps, a few
# minutes on a 2-core CPU); prints the final return and where the learning curve is.
run: $(STAMP)
	$(VENV)/bin/magejax train --env pendulum --algo mage --preset cpu --seeds 2 --steps 5000 \
		--eval-every 250 --out runs/quickstart --overwrite

# CI-sized test suite (tiny networks, few steps); `slow` learning checks are excluded. Most tests
# are dominated by XLA compilation, which is single-threaded: pytest-xdist runs one worker per
# core (at most 4, each holds its own JAX runtime); an idle worker steals tests from a busy one.
test: $(STAMP) headless-gl
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
