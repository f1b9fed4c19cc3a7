"""argv and conf/ turned into checked values, without torch: typed config groups, overrides,
the run's identity, the optimized metric, where conf/ lives.
"""
