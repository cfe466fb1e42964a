"""Everything of the miner that speaks bittensor: protocol, config, chain, wallet, guard, axon."""

__version__ = "0.1.0"
