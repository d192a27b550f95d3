"""Run folders and the modes on them: train, test, predict; results, plots, timelines."""
