"""The miner, the part that speaks bittensor. `serving/`: what the running miner imports to answer
validators; `tools/`: the operator's commands (`natix-miner`). `argparsing` and `errors` are the
small part both share. Serving never imports from `tools/` (tests/test_layout.py)."""

__version__ = "0.1.0"
