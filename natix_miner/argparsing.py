"""The command line's help and errors: each default said once, and a mistyped flag costs two lines;
and the flags of a settings model written from its fields (see add_flags).

argparse's own error prints the whole usage first; the miner's runs to about 36 lines (bittensor's
flags included) before the one line that says what is wrong.
"""

from __future__ import annotations

import argparse
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, Field, ValidationError


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Descriptions kept as written; a flag's default appended unless it is None, "" or [] (nothing
    to say) or the help already says it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.default in (None, "", []) or "default" in text:
            return text
        return super()._get_help_string(action)


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are the short usage and the error itself (sub-commands inherit it)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        self.exit(2, f"usage: {self.prog} [flags]  (`{self.prog} --help` lists them)\n{self.prog}: error: {message}\n")


def hide(parser: argparse.ArgumentParser, dest: str) -> None:
    """Keep a flag working but out of --help (a library's internal one)."""
    for action in parser._actions:
        if action.dest == dest:
            action.help = argparse.SUPPRESS
            return


def parse_bool(text: str) -> bool:
    value = str(text).strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


# --- settings models whose fields are flags ------------------------------------------------------
# A field made with flag() is one command-line flag: its name, default, help and checks stay on the
# field; add_flags() writes the parser from them. A field made with library_flag() is read from a
# flag another library adds to the parser with its own default (bittensor's --wallet.name ...).


def flag(name: str, default: Any = ..., help: str = "", *, group: str | None = None, metavar: str | None = None, **checks) -> Any:
    return Field(default, description=help, json_schema_extra={"flag": name, "group": group, "metavar": metavar}, **checks)


def library_flag(name: str, **checks) -> Any:
    return Field(json_schema_extra={"flag": name, "library": True}, **checks)


def _bare(annotation: Any) -> Any:
    """int from int | None, Annotated[int, ...] and the like."""
    if get_origin(annotation) is Annotated:
        return _bare(get_args(annotation)[0])
    if get_origin(annotation) in (Union, UnionType):
        (inner,) = [arg for arg in get_args(annotation) if arg is not type(None)]
        return _bare(inner)
    return annotation


def _argparse_kind(annotation: Any, default: Any) -> dict[str, Any]:
    annotation = _bare(annotation)
    if get_origin(annotation) is Literal:
        return {"choices": get_args(annotation)}
    if get_origin(annotation) is list:  # repeatable
        return {"action": "append", "type": _bare(get_args(annotation)[0])}
    if annotation is bool:  # off by default: a plain switch; on by default: takes 'false'
        return {"action": "store_true"} if default is False else {"type": parse_bool, "nargs": "?", "const": True}
    return {"type": annotation}


def add_flags(parser: argparse.ArgumentParser, model: type[BaseModel], groups: dict[str, str]) -> None:
    """One flag per flag() field of `model`, in field order; `groups` titles the groups they name."""
    made: dict[str, argparse._ArgumentGroup] = {}
    for field in model.model_fields.values():
        extra = field.json_schema_extra or {}
        if "flag" not in extra or extra.get("library"):
            continue
        group = extra["group"]
        if group is not None and group not in made:
            made[group] = parser.add_argument_group(groups[group])
        default = field.get_default(call_default_factory=True)
        shape = _argparse_kind(field.annotation, default) | ({"metavar": extra["metavar"]} if extra["metavar"] else {})
        made.get(group, parser).add_argument(extra["flag"], default=default, help=field.description, **shape)


def flag_name(model: type[BaseModel], field: str) -> str:
    return model.model_fields[field].json_schema_extra["flag"]


def flag_values(args: argparse.Namespace, model: type[BaseModel]) -> dict[str, Any]:
    """Field name -> the value parsed for its flag (argparse's dest: the flag without its dashes)."""
    return {name: getattr(args, flag_name(model, name).lstrip("-")) for name, field in model.model_fields.items()
            if "flag" in (field.json_schema_extra or {})}


_BOUNDS = {"greater_than": "must be more than {gt:g}", "greater_than_equal": "must be at least {ge:g}",
           "less_than": "must be less than {lt:g}", "less_than_equal": "must be at most {le:g}"}


def _shown(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return " ".join(map(str, value)) if isinstance(value, list) else str(value)


def flag_problems(exc: ValidationError, model: type[BaseModel]) -> list[str]:
    """One line per problem, each naming the flag: `--axon.port 70000 must be at most 65535`."""
    problems = []
    for err in exc.errors():
        if not err["loc"]:  # a check of the whole model names its own flags
            problems += str(err["ctx"]["error"]).splitlines() if err["type"] == "value_error" else [err["msg"]]
            continue
        name = flag_name(model, err["loc"][0])
        if err["type"] == "value_error":  # our checks: a sentence per problem, naming the value
            problems += [f"{name} {line}" for line in str(err["ctx"]["error"]).splitlines()]
        elif err["type"] in _BOUNDS:
            problems.append(f"{name} {_shown(err['input'])} {_BOUNDS[err['type']].format(**err['ctx'])}")
        else:
            problems.append(f"{name} {_shown(err['input'])}: {err['msg']}")
    return problems
