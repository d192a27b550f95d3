"""Fold plans, the Trainer interface and its two trainers, the fold record, scores and calibration."""
