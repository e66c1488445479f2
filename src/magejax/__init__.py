"""magejax: MAGE policy optimisation, its baselines and MAAC, as pure JAX functions."""
__version__ = "0.1.0"
