"""The ``vad`` verb registry and its parser: how a command line becomes ``(verb, namespace, configs)``.

A verb registers itself with :func:`verb` (its handler, the config classes it passes to the library, its own
arguments). :func:`parse` builds only the invoked verb's options, from its configs (``apps/cli_config.py``), so the
other verbs' configs and the library stay unimported; ``--help`` may even come from a cache. ``-q``/``-v`` are global
and may stand before or after the verb.
"""
from __future__ import annotations

import argparse
import functools
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from apps.cli_config import (
    Option,
    add_options,
    build,
    cached_config_options,
    config_options,
    flag,
    help_cache,
    load_class,
    normalize_argv,
    version,
)

GLOBAL_FLAGS = {"-q": "quiet", "--quiet": "quiet", "-v": "verbose", "--verbose": "verbose"}
# how library messages name a setting: `name` or `config.field`, a word of its own (not inside a path or file name)
FIELD_NAME = re.compile(r"(?<![\w/\\.`-])`([a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)*)`(?=[\s,;:)\]'\x22?!=]|\.(?:\s|$)|$)")


class UsageError(Exception):
    """Bad command line: one line on stderr, exit 2."""


@dataclass(frozen=True)
class Run:
    """What a verb's handler gets."""

    name: str  # the verb
    args: Any  # the verb's parsed namespace (its own arguments: paths, host, ...)
    configs: dict[str, Any]  # config key -> the config built from the command line ("" for a top-level config)
    quiet: bool  # -q: no progress bars


@dataclass(frozen=True)
class Verb:
    """A ``vad`` verb: its handler, the configs it generates options from, and its own arguments."""

    help: str  # one line in `vad --help`
    run: Callable[[Run], int]  # the handler: one call into the library
    configs: dict[str, str]  # config key -> "module:Class"; key "" puts the config's fields at the top level
    args: tuple  # (flags, add_argument kwargs) of the arguments that are not config fields
    shortcuts: dict[str, str] = field(default_factory=dict)  # short flag -> config key it stands for


VERBS: dict[str, Verb] = {}


def verb(name: str, help: str, configs: dict[str, str] | None = None, args: Sequence = (),
         shortcuts: dict[str, str] | None = None) -> Callable:
    """Register the decorated handler as verb ``name``."""
    def register(fn: Callable[[Run], int]) -> Callable[[Run], int]:
        VERBS[name] = Verb(help, fn, configs or {}, tuple(args), shortcuts or {})
        return fn
    return register


def arg(*flags: str, **kwargs: Any) -> tuple:
    """A verb argument, as ``parser.add_argument(*flags, **kwargs)`` will get it."""
    return flags, kwargs


def verb_parser(name: str, help_only: bool = False):
    """The parser of one verb: its own arguments, then one option per field of its configs. For ``help_only``
    the options may come from the help cache, which spares importing the library."""
    from jsonargparse import ActionConfigFile, ArgumentParser

    spec = VERBS[name]
    items = cached_config_options(spec.configs, help_cache(name)) if help_only else config_options(spec.configs)
    parser = ArgumentParser(description=spec.help + " (-q/-v may also come after the verb)",
                            print_config="--print-config", env_prefix=False)
    parser.add_argument("--config", action=ActionConfigFile,
                        help="a YAML or JSON run file, as --print-config writes it; flags after it override it")
    for flags, kwargs in spec.args:
        parser.add_argument(*flags, **kwargs)
    add_options(parser, items, spec.shortcuts)
    return parser


def build_parser(name: str | None = None, sub=None):
    """The ``vad`` parser. Only verb ``name`` gets its options, ``sub`` if given (the other verbs' configs are
    not imported)."""
    from jsonargparse import ArgumentParser

    parser = ArgumentParser(prog="vad", description="vadgraph: video anomaly detection with graph fusion",
                            exit_on_error=False, env_prefix=False, allow_abbrev=False)
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars (before or after the verb)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more (before or after the verb)")
    parser.add_argument("--version", action="version", version=f"vad {version()}")
    verbs = parser.add_subcommands(dest="command", required=True)
    for verb_name, spec in VERBS.items():
        if verb_name == name:
            subparser = sub or verb_parser(name)
        else:
            subparser = ArgumentParser(description=spec.help)
        verbs.add_subcommand(verb_name, subparser, help=spec.help)
        subparser.prog = f"vad {verb_name}"
    return parser


def split_globals(argv: Sequence[str]) -> tuple[set[str], list[str]]:
    """``-q``/``-v`` are global: taken out wherever they stand (before ``--``); the rest is the verb's."""
    end = list(argv).index("--") if "--" in argv else len(argv)
    found = {GLOBAL_FLAGS[a] for a in argv[:end] if a in GLOBAL_FLAGS}
    return found, [a for a in argv[:end] if a not in GLOBAL_FLAGS] + list(argv[end:])


def usage_message(exc: argparse.ArgumentError, name: str | None) -> str:
    """jsonargparse's message in one line; missing arguments named without the verb (it says "train.out")."""
    message = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    if name not in VERBS:
        return message + " (see vad --help)"
    head, sep, names = message.partition("arguments are required: ")
    if sep:
        message = head + sep + ", ".join(n.removeprefix(f"{name}.") for n in names.split(", "))
    return message + f" (see vad {name} --help)"


def parse(argv: list[str]) -> tuple[str, Any, dict[str, Any]]:
    """``(verb, its namespace, its configs)``; exits (0) for --help, --version and --print-config."""
    name = next((a for a in argv if not a.startswith("-")), None)
    end = argv.index("--") if "--" in argv else len(argv)
    sub = verb_parser(name, help_only=bool({"-h", "--help"} & set(argv[:end]))) if name in VERBS else None
    if sub is not None:
        argv = normalize_argv(argv, set(sub._option_string_actions), VERBS[name].shortcuts)
    try:
        cfg = build_parser(name, sub).parse_args(argv)
    except argparse.ArgumentError as exc:
        raise UsageError(usage_message(exc, name)) from None
    ns = cfg[cfg.command]
    configs = {}
    for key, path in VERBS[cfg.command].configs.items():
        try:
            configs[key] = build(load_class(path), (ns[key] if key else ns).as_dict())
        except (TypeError, ValueError) as exc:
            raise UsageError(f"{key or cfg.command}: {exc} (see vad {cfg.command} --help)") from None
    return cfg.command, ns, configs


@functools.cache
def field_flags(name: str) -> dict[str, str]:
    """Config field (``backbone.pretrained``) or argument (``labels``) of verb ``name`` -> the flag that sets it,
    the short one where there is one."""
    spec = VERBS[name]
    flags = {}
    for names, _ in spec.args:
        long = next((f for f in names if f.startswith("--")), None)
        if long:
            flags[long[2:].replace("-", "_")] = long
    for item in config_options(spec.configs):
        if isinstance(item, Option):  # not a Group heading
            flags[item.key] = flag(item.key)
    flags.update({key: short for short, key in spec.shortcuts.items()})
    return flags


def name_flags(message: str, name: str | None) -> str:
    """``message`` with each setting the library names in backquotes replaced by the flag that sets it in verb
    ``name`` (see :func:`flags_for_fields`)."""
    if name not in VERBS or "`" not in message:
        return message
    return flags_for_fields(message, field_flags(name))


def flags_for_fields(message: str, flags: Mapping[str, str]) -> str:
    """``message`` with each backquoted setting name (`` `segments.threshold` ``, a config field or argument, standing
    as a word of its own: not inside a path) replaced by its flag in ``flags`` (name -> flag): the flag of that
    key; else a flag of that name; else the flags whose keys end with it (``.threshold``), or end with its last
    part; a name none of these finds is left as it is."""
    def replace(match: re.Match) -> str:
        word = match.group(1)
        for candidate in dict.fromkeys((word, word.rsplit(".", 1)[-1])):
            if candidate in flags:
                return flags[candidate]
            if "--" + candidate.replace("_", "-") in flags.values():  # a short flag of the same name
                return "--" + candidate.replace("_", "-")
            ends = sorted({f for key, f in flags.items() if key.endswith("." + candidate)})
            if ends:
                return " or ".join(ends)
        return match.group(0)

    return FIELD_NAME.sub(replace, message)
