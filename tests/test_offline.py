import socket

import pytest

from cascade.config import build_cascade, load_config
from cascade.scenes import generate_scene


def test_the_suite_cannot_reach_the_network():
    with pytest.raises(OSError, match="must not reach the network"):
        socket.create_connection(("93.184.216.34", 443), timeout=1)


def test_default_preset_loads_and_answers_offline():
    result = build_cascade(load_config("cpu-default")).predict(generate_scene(11).image)
    assert 0.0 <= result.probability <= 1.0
