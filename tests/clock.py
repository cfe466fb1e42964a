class FakeClock:
    """A monotonic clock the test moves by hand (`clock.now += seconds`)."""

    def __init__(self, start: float = 0.0):
        self.now = start

    def __call__(self) -> float:
        return self.now
