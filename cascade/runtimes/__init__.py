"""Ways to reach a vision-language model. GPU runtimes import their engine only when built."""


class RuntimeUnavailable(RuntimeError):
    """The runtime's engine is not installed here; the message says how to get it."""
