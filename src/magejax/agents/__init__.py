"""The agents: the TD3 family (MAGE-TD3, Dyna-TD3, TD3, TD3-UTD, MAGE-DDPG; `td3.py`) and MAAC
(`maac.py`), their networks, losses and the test-time planner."""
