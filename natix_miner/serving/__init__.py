"""The serving path: everything the running miner imports, from the axon's wiring (`neuron`) to the
answer (`forward`), who may ask (`guard`, `caller_gate`, `signatures`, `http_limits`), the chain,
the wallet, the journal, metrics and logs, and the miner's settings (`config`). It imports neither
the operator's tools nor the cascade's lab (tests/test_layout.py), nor torch for a CPU preset
(tests/test_torch_free.py)."""
