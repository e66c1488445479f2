"""The experiment runner behind the scripts in `experiments/`: conditions and figures."""
