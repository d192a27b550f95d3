"""The paper's figures and their reproduction: the grid, its registry, executors, report, baselines."""
