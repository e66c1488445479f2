#!/usr/bin/env bash
# The learning runs of the issues "The paper's claims at a scale where everything learns" and
# "Fidelity to the original code" in the order that serves them, one heavy job at a time on the
# 2-core CPU. Rerun the same command after any interruption: every script reuses its finished
# conditions (and other figures' equal ones) and resumes an unfinished one from its checkpoint.
#
#   mkdir -p runs && nohup experiments/learning_queue.sh >> runs/learning_queue.log 2>&1 &
#
# Progress: runs/learning_queue.log (one line per evaluation). Commit experiments/results/ as
# conditions finish.
set -u
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
run() { echo "== $(date -u +%Y-%m-%dT%H:%M:%SZ) $*"; "$PY" "$@" || echo "== exit $? from: $*"; }

# A queue restarted while one of its scripts still runs waits for it (two heavy jobs would share
# the 2 cores and slow both).
while pgrep -f "experiments/[a-z0-9_]+\.py" > /dev/null; do sleep 30; done

run experiments/fig2_sample_efficiency.py --scale cpu --only pendulum   # Fig. 2, Pendulum: 4 algorithms
run experiments/bf16_parity.py --scale cpu                              # f32 copied from Fig. 2
run experiments/fig3_action_gradient_error.py --scale cpu
run experiments/fig2_sample_efficiency.py --scale cpu --only cartpole_swingup/mage
run experiments/fig2_sample_efficiency.py --scale cpu --only cartpole_swingup/td3  # TD3 and TD3-UTD: minutes
F2=experiments/results/fig2_sample_efficiency/cartpole_swingup                # their checkpoints are not
run experiments/cartpole_saturation.py --runs $F2/mage $F2/td3 $F2/td3-utd $F2/dyna  # committed: diagnose now
run experiments/fig2_sample_efficiency.py --scale cpu                   # + CartPole Dyna-TD3 (~75 min)
run experiments/fig8_lambda_sweep.py --scale cpu                        # λ = 0.2 and Dyna-TD3 copied
# (make test-slow's cpu-preset check ran here once, session 10: experiments/results/cpu_preset_sweep/test_slow_cpu_preset.log)
run experiments/fig4_learned_reward.py --scale cpu
run experiments/cartpole_saturation.py                                  # + Fig. 4's learned reward
run experiments/fig7_model_capacity.py --scale cpu                      # default models copied
# The paper-size Pendulum bar (issue "The paper's claims"), the cheap baselines first so that
# whatever completes can be compared. It completes that issue, so it runs before the rest of the
# sweep (about 14 h of runs that cannot displace the chosen preset: see the sweep's table).
# Evaluation every 250 steps makes its MAGE-TD3 run exactly the sweep's paper-size setting
# critic384_batch512, which the sweep then adopts (not retrained).
PAPER="--scale paper --steps 10000 --eval-every 250"
run experiments/fig2_sample_efficiency.py $PAPER --only pendulum/td3     # TD3 and TD3-UTD
run experiments/fig2_sample_efficiency.py $PAPER --only pendulum/mage    # ~4 h
run experiments/fig2_sample_efficiency.py $PAPER --only pendulum         # + Dyna-TD3
run experiments/cpu_preset_sweep.py --only critic384_batch512 critic384_batch512_nonorm
run experiments/cpu_preset_sweep.py                                     # the rest of the grid
run experiments/cpu_preset_sweep.py --report
