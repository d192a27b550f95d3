"""The paper's figures, typed once: what REPRODUCTION.md sets ours beside.

Source: Ye et al., "Temporal Modeling Matters: A Novel Temporal Emotional
Modeling Approach for Speech Emotion Recognition", ICASSP 2023 (camera-ready),
as quoted in `../shared/REFERENCE.md`. Figures are (UAR, WAR) in percent.
Table 1's `*` column is the honest setting (each fold's last epoch), its `**`
column selects each fold's epoch on its own test fold; Table 3 is in the `**`
setting (its TIM-Net column equals Table 1's `**`).
"""
from timnet_keras.config import MODEL_VARIANTS

SOURCE = "Ye et al., ICASSP 2023, camera-ready (quoted in ../shared/REFERENCE.md)"

# Table 1: corpus -> {"last": (UAR, WAR), "test_selected": (UAR, WAR)}.
TABLE_1 = {
    "CASIA": {"last": (91.08, 91.08), "test_selected": (94.67, 94.67)},
    "EMODB": {"last": (89.19, 90.28), "test_selected": (95.17, 95.70)},
    "EMOVO": {"last": (86.56, 86.56), "test_selected": (92.00, 92.00)},
    "IEMOCAP": {"last": (69.00, 68.29), "test_selected": (72.50, 71.65)},
    "RAVDE": {"last": (90.04, 90.07), "test_selected": (91.93, 92.08)},
    "SAVEE": {"last": (77.26, 79.36), "test_selected": (86.31, 87.71)},
}

# Table 3 / A3 (test-selected): corpus -> variant -> (UAR, WAR). Variant names are our --model names.
ABLATIONS = tuple(MODEL_VARIANTS)[1:]  # config.MODEL_VARIANTS: every variant but TIM-Net itself
TABLE_3 = {
    "CASIA": {"tcn": (86.92, 86.92), "no_bd": (91.33, 91.33), "no_ms": (90.50, 90.50), "no_df": (91.83, 91.83),
              "timnet": (94.67, 94.67)},
    "EMODB": {"tcn": (89.68, 90.09), "no_bd": (90.96, 91.59), "no_ms": (91.80, 92.52), "no_df": (91.46, 92.34),
              "timnet": (95.17, 95.70)},
    "EMOVO": {"tcn": (82.14, 82.14), "no_bd": (86.73, 86.73), "no_ms": (87.24, 87.24), "no_df": (86.56, 86.56),
              "timnet": (92.00, 92.00)},
    "IEMOCAP": {"tcn": (61.97, 59.84), "no_bd": (71.07, 70.22), "no_ms": (70.68, 70.04), "no_df": (70.82, 69.82),
                "timnet": (72.50, 71.65)},
    "RAVDE": {"tcn": (83.20, 83.75), "no_bd": (88.48, 88.68), "no_ms": (89.97, 90.21), "no_df": (87.50, 87.99),
              "timnet": (91.93, 92.08)},
    "SAVEE": {"tcn": (78.81, 80.63), "no_bd": (80.95, 83.33), "no_ms": (82.50, 84.38), "no_df": (80.95, 82.92),
              "timnet": (86.31, 87.71)},
}

# Table 2: the average over the 20 ordered pairs of the five corpora, mean and std over 10 runs:
# variant -> ((UAR mean, UAR std), (WAR mean, WAR std)). Five shared emotions, all of the source for training,
# all of the target for testing, no target data in training.
TABLE_2_AVERAGE = {"tcn": ((24.47, 0.38), (24.39, 0.42)), "timnet": ((34.49, 0.43), (35.66, 0.32))}
# The corpora and emotions are config's CROSS_CORPUS_NAMES and CROSS_CORPUS_LABELS.
TABLE_2_PAIRS, TABLE_2_RUNS = 20, 10
# Table A4: TIM-Net, the best run per pair (source, target) -> (UAR, WAR); only the ten legible pairs.
TABLE_A4_BEST = {
    ("CASIA", "EMODB"): (50.4, 43.9), ("CASIA", "EMOVO"): (36.4, 36.4), ("CASIA", "RAVDE"): (30.7, 32.4),
    ("CASIA", "SAVEE"): (42.0, 49.2), ("EMODB", "CASIA"): (42.4, 42.4), ("EMODB", "EMOVO"): (36.4, 36.4),
    ("EMODB", "RAVDE"): (33.9, 29.8), ("EMODB", "SAVEE"): (35.2, 42.5), ("EMOVO", "CASIA"): (39.8, 39.8),
    ("EMOVO", "EMODB"): (47.0, 53.4),
}
TABLE_A4_AVERAGE = (37.4, 38.6)  # TIM-Net, best run per pair, averaged over all 20 pairs
