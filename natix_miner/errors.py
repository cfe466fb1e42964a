class SetupError(RuntimeError):
    """A problem the operator must fix before the miner can run; the message says how.

    The entry point prints it on one line and exits non-zero, without a traceback.
    """
