"""Audio to MFCC: the authors' recipe, the preprocessor, caches, corpus readers, extraction, normalisation."""
