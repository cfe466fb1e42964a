"""Issue 16, item 9: the command line's small lies and noise (help, errors, colours, build notes)."""

import io
import logging
import re

import pytest

from natix_miner.tools.cli import main

SUBCOMMANDS = ["run", "doctor", "train", "train-detector", "distill", "eval", "calibrate", "model-card", "register",
               "sglang-args", "build", "fetch-model", "status", "report"]


def help_of(capsys, command: str) -> str:
    with pytest.raises(SystemExit) as stopped:
        main([command, "--help"])
    assert stopped.value.code == 0
    return capsys.readouterr().out


def option_blocks(text: str) -> list[str]:
    """Each option's entry in a --help text (it starts at a line '  -x' or '  --x')."""
    return re.split(r"\n(?=  -)", text)


def test_run_help_names_natix_miner_run_and_hides_bittensors_mock_switch(capsys):
    text = help_of(capsys, "run")
    assert text.startswith("usage: natix-miner run ")
    assert "_mock" not in text and "--subtensor.network" in text


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_every_help_says_each_default_once_and_never_none(capsys, command):
    text = help_of(capsys, command)
    assert "(default: None)" not in text and "(default: )" not in text
    twice = [block for block in option_blocks(text) if len(re.findall(r"[(;,] ?default[: ]", block)) > 1]
    assert not twice, twice


def test_sglang_args_says_it_shows_the_h100_preset(capsys):
    assert "(default: h100)" in help_of(capsys, "sglang-args")
    assert main(["sglang-args"]) == 0
    assert "the h100 preset" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["run", "--netuid", "seventytwo"], ["doctor", "--netuid", "seventytwo"], ["status", "--netuid", "seventytwo"]])
def test_a_bad_flag_costs_two_lines_not_the_whole_usage(capsys, argv):
    with pytest.raises(SystemExit) as stopped:
        main(argv)
    err = capsys.readouterr().err
    assert stopped.value.code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith(f"usage: natix-miner {argv[0]} ")
    assert "invalid int value: 'seventytwo'" in lines[1]


def test_bittensors_console_lines_carry_no_colour_codes_off_a_terminal():
    from bittensor.utils.btlogging.format import BtStreamFormatter

    from natix_miner.serving.logs import uncolour

    stream = io.StringIO()  # what pm2 gives the miner: no terminal
    handler = logging.StreamHandler(stream)
    handler.setFormatter(BtStreamFormatter())
    record = logging.LogRecord("bittensor", logging.INFO, __file__, 1, "[red]serving[/red] on port 8091", None, None)
    assert "\x1b[" in handler.format(record)  # bittensor's own colours, as it writes them
    assert uncolour([handler], stream) == 1
    handler.emit(record)
    assert "serving on port 8091" in stream.getvalue() and "\x1b" not in stream.getvalue()


def test_the_log_file_carries_no_colour_codes(tmp_path):
    from natix_miner.serving import logs

    path = tmp_path / "miner.log"
    logs.configure(path, stderr=False)
    try:
        logs.logger.opt(colors=True).warning("<red>journal</red> degraded")
        logs.flush()
    finally:
        logs.close()
    text = path.read_text()
    assert "journal degraded" in text and "\x1b" not in text


def test_the_tensorrt_llm_step_says_skipped_and_why():
    from compression.build import tensorrt_llm_step
    from compression.recipe import load_recipe

    recipe = load_recipe("cpu-tiny-fp8")
    said = []
    assert tensorrt_llm_step(recipe, None, None, said.append).startswith("skipped: not asked for")
    assert said == [said[0]] and said[0].startswith("[6/6] TensorRT-LLM warm-up skipped: not asked for")

    asked = recipe.model_copy(update={"tensorrt_llm": recipe.tensorrt_llm.model_copy(update={"warm_up": True})})
    said.clear()
    try:
        import tensorrt_llm  # noqa: F401
    except ImportError:
        assert tensorrt_llm_step(asked, None, None, said.append).startswith("skipped: tensorrt_llm is not importable")
        assert said[0].startswith("[6/6] TensorRT-LLM warm-up skipped: tensorrt_llm is not importable")


def test_a_cpu_recipe_without_modelopt_is_told_the_cpu_install(monkeypatch):
    import sys

    from compression.build import MissingLibrary, _require_modelopt

    monkeypatch.setitem(sys.modules, "modelopt.torch.quantization", None)  # import fails as if not installed
    with pytest.raises(MissingLibrary) as cpu:
        _require_modelopt("cpu")
    assert "nvidia-modelopt" in str(cpu.value) and "runs on the CPU" in str(cpu.value) and "[gpu]" not in str(cpu.value)
    with pytest.raises(MissingLibrary) as gpu:
        _require_modelopt("cuda")
    assert "[gpu]" in str(gpu.value)
