"""The package's one error base class: what the command line turns into a single `error:` line.

Every expected failure (a bad flag value, a damaged file, a run that cannot
go on) raises a subclass of `TimnetError` whose message says what to do.
It is a ValueError, so callers of the Python API that caught ValueError
before still do.
"""


class TimnetError(ValueError):
    """An expected failure; the message names the input and says what to do."""


class InputError(TimnetError):
    """An input (flag, file or argument) refused where it enters, before any work is done."""


class RunError(TimnetError):
    """A run (training, testing, exporting) that cannot go on; the message says what to do."""


class RecordError(TimnetError):
    """A record (a fold's JSON, a run's config) with missing, unknown or mistyped fields."""
