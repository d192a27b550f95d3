"""The evaluation protocols: which samples each fold trains and tests on.

kfold is the authors' shuffled KFold over the sample order (the order is part
of reproducing the paper: see corpora.py). stratified balances classes.
speaker keeps every speaker on one side of each fold.
"""
import numpy as np
from sklearn.model_selection import GroupKFold, KFold, LeaveOneGroupOut, StratifiedKFold

from timnet_keras.errors import TimnetError

PROTOCOLS = ("kfold", "stratified", "speaker")


class ProtocolError(TimnetError):
    """Folds that cannot be drawn; the message says what to do."""


def make_folds(features, protocol="kfold", split_fold=10, seed=46):
    """[(train_indices, test_indices)] of a protocol over a FeatureSet.

    speaker: leave-one-speaker-out when there are at most `split_fold`
    speakers, otherwise `split_fold` folds grouped by speaker.

    Example:
        >>> from timnet_keras.features.cache import FeatureSet, one_hot
        >>> toy = FeatureSet(np.zeros((6, 2, 39)), one_hot([0, 1] * 3, 2), ("a", "b"))
        >>> [len(test) for _, test in make_folds(toy, "kfold", 3)]
        [2, 2, 2]
    """
    n = len(features.x)
    if protocol in ("kfold", "stratified") and not 2 <= split_fold <= n:
        raise ProtocolError(f"--split_fold {split_fold}: needs 2 to {n} folds for {n} samples")
    if protocol == "kfold":
        splits = KFold(split_fold, shuffle=True, random_state=seed).split(np.zeros(n))
    elif protocol == "stratified":
        splits = StratifiedKFold(split_fold, shuffle=True, random_state=seed).split(np.zeros(n), features.classes)
    elif protocol == "speaker":
        speakers = np.asarray(features.speakers)
        if len(speakers) != n or (speakers == "").any():
            raise ProtocolError("--protocol speaker needs a speaker for every file; re-extract with --speaker_regex")
        groups = np.unique(speakers)
        if len(groups) < 2:
            raise ProtocolError(f"--protocol speaker needs at least two speakers; the corpus has {len(groups)} "
                                f"({', '.join(map(str, groups))}): re-extract with a --speaker_regex that finds them, "
                                f"or use --protocol kfold")
        splitter = LeaveOneGroupOut() if len(groups) <= split_fold else GroupKFold(split_fold)
        splits = splitter.split(np.zeros(n), groups=speakers)
    else:
        raise ProtocolError(f"unknown protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")
    return [(np.asarray(tr), np.asarray(te)) for tr, te in splits]
