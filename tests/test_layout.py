"""The layout by role holds: what the running miner imports (natix_miner/serving/, the shared
natix_miner/*.py, the cascade engine: cascade/ less cascade/lab/) never imports the operator's tools,
the cascade's lab or the offline builds, not even lazily inside a function; every package says its
role in its docstring; the README's Layout section names each module where it lives."""

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("natix_miner", "cascade", "compression")
# What serving may not reach: the operator's commands, the lab, the offline builds (compression/).
OFFLINE = ("natix_miner.tools", "cascade.lab", "compression")
MODULE_NAME = re.compile(r"[a-z_]+(\.[a-z_]+)+")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def serving_files() -> list[Path]:
    shared = list((ROOT / "natix_miner").glob("*.py"))
    serving = list((ROOT / "natix_miner" / "serving").rglob("*.py"))
    engine = [p for p in (ROOT / "cascade").rglob("*.py") if "lab" not in p.relative_to(ROOT / "cascade").parts]
    return sorted(shared + serving + engine)


def imported_modules(source: str, module: str, is_package: bool) -> set[str]:
    """Every module `source` names in an import statement, at any depth (lazy imports included),
    relative ones resolved against `module`; for `from X import y`, both X and X.y (y may be a
    module). String constants that are dotted module names count too (importlib.import_module)."""
    package = module.split(".") if is_package else module.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and MODULE_NAME.fullmatch(node.value):
            found.add(node.value)
    return found


def offline_imports(source: str, module: str, is_package: bool = False) -> list[str]:
    return sorted(m for m in imported_modules(source, module, is_package)
                  if any(m == o or m.startswith(o + ".") for o in OFFLINE))


def test_no_serving_module_imports_the_tools_the_lab_or_the_offline_builds():
    files = serving_files()
    names = {module_name(p) for p in files}
    # the walk covers what the miner runs: a move that left these out would make the test pass vacuously
    assert {"natix_miner.serving.neuron", "natix_miner.serving.forward", "natix_miner.argparsing",
            "cascade.engine", "cascade.config", "cascade.tiers.classifier", "cascade.runtimes.onnx_yolo"} <= names
    assert not any(n.startswith(OFFLINE) for n in names)
    found = {module_name(p): offline_imports(p.read_text(), module_name(p), p.name == "__init__.py") for p in files}
    assert {name: bad for name, bad in found.items() if bad} == {}


def test_the_engine_knows_nothing_of_the_miner():
    engine = [p for p in serving_files() if module_name(p).startswith("cascade")]
    found = {module_name(p): sorted(m for m in imported_modules(p.read_text(), module_name(p), p.name == "__init__.py")
                                    if m.split(".")[0] == "natix_miner") for p in engine}
    assert {name: bad for name, bad in found.items() if bad} == {}


@pytest.mark.parametrize("source, module, caught", [
    ("from .lab import training\n", "cascade.engine", ["cascade.lab", "cascade.lab.training"]),
    ("from . import lab\n", "cascade.config", ["cascade.lab"]),
    ("def warm():\n    from ..lab.scenes import generate_scene\n", "cascade.tiers.detector", ["cascade.lab.scenes", "cascade.lab.scenes.generate_scene"]),
    ("def run():\n    import natix_miner.tools.cli\n", "natix_miner.serving.neuron", ["natix_miner.tools.cli"]),
    ("from ..tools.status import quiet_line\n", "natix_miner.serving.payout", ["natix_miner.tools.status", "natix_miner.tools.status.quiet_line"]),
    ("from .tools import cli\n", "natix_miner", ["natix_miner.tools", "natix_miner.tools.cli"]),
    ("import importlib\nimportlib.import_module('compression.build')\n", "cascade.tier_kinds", ["compression.build"]),
    ("from cascade.scenes import generate_scene\nfrom .journal import RequestJournal\n", "natix_miner.serving.neuron", []),
    ("from .scenes import generate_scene\n", "cascade.engine", []),
])
def test_the_check_resolves_relative_and_lazy_imports(source, module, caught):
    assert offline_imports(source, module, is_package=module == "natix_miner") == caught


def test_every_package_says_its_role():
    packages = sorted(p for name in PACKAGES for p in (ROOT / name).rglob("__init__.py"))
    assert len(packages) >= 8
    silent = [str(p.relative_to(ROOT)) for p in packages if len((ast.get_docstring(ast.parse(p.read_text())) or "").split()) < 8]
    assert silent == []


def layout_bullets() -> dict[str, str]:
    """The README's Layout section, bullet by bullet, keyed by the folder each names first."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index("\n## Layout\n"):]
    section = section[: section.find("\n## ", 1)] if "\n## " in section[1:] else section
    bullets = re.split(r"\n- ", section)[1:]
    return {re.match(r"`([^`]+)`", b).group(1): b for b in bullets if b.startswith("`")}


@pytest.mark.parametrize("folder", ["natix_miner/serving/", "natix_miner/tools/", "cascade/", "cascade/lab/"])
def test_the_readme_layout_names_each_module_in_its_folder(folder):
    bullet = layout_bullets()[folder]
    modules = sorted(p.stem for p in (ROOT / folder).glob("*.py") if p.name != "__init__.py")
    assert modules
    assert [m for m in modules if f"`{m}`" not in bullet] == []
