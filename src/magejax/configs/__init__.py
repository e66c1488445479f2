"""Run configuration: the `Config` dataclass (`config.py`), the presets (`presets.py`) and
validation (`validation.py`)."""
from magejax.configs.config import (ALGO_SPECS, ALGOS, MODELS, PRECISIONS, REWARDS, SIZES, AlgoSpec, Config, ConfigError,
                                    CriticLoss, TransitionSource)
from magejax.configs.presets import _PAPER_SIZES, CPU, CPU_BATCH, CPU_CRITIC, TINY, preset
from magejax.configs.validation import validate

__all__ = ["ALGO_SPECS", "ALGOS", "MODELS", "PRECISIONS", "REWARDS", "SIZES", "AlgoSpec", "Config", "ConfigError", "CriticLoss",
           "TransitionSource", "CPU", "CPU_BATCH", "CPU_CRITIC", "TINY", "preset", "validate", "_PAPER_SIZES"]
