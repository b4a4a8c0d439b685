"""Command-line options generated from the config dataclasses, for ``apps/cli.py``.

Every field of a config becomes one option named after its path in the config: ``ExtractConfig.backbone.patch_grid``
is ``--backbone.patch-grid`` (``_`` may be typed for ``-``), a config placed under a key adds it in front
(``--model.hidden``). The option is typed by the field's annotation, defaults to the config's default, and its help
is the field's trailing ``#`` comment, read from the source. Nothing here names a field: one added to a config, or a
config nested in one, appears in ``--help``, ``--print-config`` and ``--config`` files with no change to the CLI.
"""
from __future__ import annotations

import ast
import dataclasses
import hashlib
import importlib
import importlib.metadata
import importlib.util
import inspect
import io
import json
import os
import sys
import tempfile
import textwrap
import tokenize
import typing
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Option:
    """One config field as a command-line option."""

    key: str  # dotted path in the parsed namespace and in config files, e.g. "backbone.patch_grid"
    type: Any  # the field's type hint (jsonargparse validates values against it)
    default: Any  # the config's default value
    help: str  # the field's comment
    group: str  # key of the (nested) config holding the field; "" for a top-level config without a key


@dataclass(frozen=True)
class Group:
    """A config, or a config nested in one: a titled section of ``--help``."""

    key: str  # dotted key ("" for a top-level config without one)
    title: str  # the key and the class name
    description: str  # the first line of the class docstring
    module: str  # where the class is defined


def flag(key: str) -> str:
    """The option string of a config key: ``backbone.patch_grid`` -> ``--backbone.patch-grid``."""
    return "--" + key.replace("_", "-")


def load_class(path: str) -> type:
    """``"package.module:Class"`` -> the class (imports the module)."""
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def field_comments(cls: type) -> dict[str, str]:
    """Field name -> its ``#`` comment (trailing, else the comment line just above), from ``cls``'s source."""
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):
        return {}
    node = ast.parse(source).body[0]
    fields_at = {n.lineno: n.target.id for n in getattr(node, "body", [])
                 if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)}
    comments: dict[int, str] = {}
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            comments[tok.start[0]] = tok.string.lstrip("#").strip()
    return {name: comments.get(line) or comments.get(line - 1, "") for line, name in fields_at.items()}


def _nested(hint: Any) -> bool:
    return isinstance(hint, type) and dataclasses.is_dataclass(hint)


def _group(key: str, cls: type) -> Group:
    doc = (inspect.getdoc(cls) or "").strip().splitlines()
    return Group(key, f"{key} ({cls.__name__})" if key else cls.__name__, doc[0] if doc else "", cls.__module__)


def walk(config: Any, prefix: str = "") -> Iterator[Group | Option]:
    """The group of ``config`` (an instance: nested defaults may differ from the nested class's), then its options
    and nested groups, depth first."""
    cls = type(config)
    yield _group(prefix, cls)
    hints = typing.get_type_hints(cls)
    comments = field_comments(cls)
    nested = []
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        key = f"{prefix}.{f.name}" if prefix else f.name
        value = getattr(config, f.name)
        if _nested(hints[f.name]) and dataclasses.is_dataclass(value):
            nested.append((value, key))
        else:
            yield Option(key, hints[f.name], value, comments.get(f.name, ""), prefix)
    for value, key in nested:
        yield from walk(value, key)


def config_options(configs: Mapping[str, str]) -> list[Group | Option]:
    """Groups and options of ``{key: "module:Class"}`` (key "" puts that config's fields at the top level)."""
    return [item for key, path in configs.items() for item in walk(load_class(path)(), key)]


def add_options(parser, items: Sequence[Group | Option], shortcuts: Mapping[str, str]) -> None:
    """Add one typed, documented option per config field to a jsonargparse ``parser``, a help section per config.

    ``shortcuts`` maps short flags to config keys (``{"--threshold": "segments.threshold"}``); they are
    listed in the field's help and rewritten to the full flag by :func:`normalize_argv`.
    """
    aliases: dict[str, list[str]] = {}
    for short, key in shortcuts.items():
        aliases.setdefault(key, []).append(short)
    sections = {}
    for item in items:
        if isinstance(item, Group):
            sections[item.key] = parser.add_argument_group(item.title, item.description)
            continue
        also = f" (also {', '.join(aliases[item.key])})" if item.key in aliases else ""
        kwargs: dict[str, Any] = {"type": item.type, "default": item.default, "help": item.help + also}
        if item.type is bool:
            kwargs.update(nargs="?", const=True)  # `--quick` alone means true; `--quick false` also works
        sections[item.group].add_argument(flag(item.key), dest=item.key, **kwargs)


def normalize_argv(argv: Sequence[str], flags: set[str], shortcuts: Mapping[str, str]) -> list[str]:
    """Rewrite shortcuts to the flags they stand for, and ``--batch_snippets`` (a config file's spelling) to
    ``--batch-snippets``; everything after ``--`` is left alone."""
    out = list(argv)
    for i, token in enumerate(out):
        if token == "--":
            break
        if not token.startswith("--"):
            continue
        name, eq, value = token.partition("=")
        if name in shortcuts:
            name = flag(shortcuts[name])
        elif name not in flags and name.replace("_", "-") in flags:
            name = name.replace("_", "-")
        out[i] = name + eq + value
    return out


def build(cls: type, values: Mapping[str, Any]) -> Any:
    """An instance of dataclass ``cls`` from parsed values (nested configs as nested mappings); the class's own
    checks (``__post_init__``) run here, so a bad value is reported the way the library words it."""
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):
        if not f.init or f.name not in values:
            continue
        value = values[f.name]
        if _nested(hints[f.name]) and isinstance(value, Mapping):
            value = build(hints[f.name], value)
        elif typing.get_origin(hints[f.name]) is tuple and isinstance(value, list):
            value = tuple(value)
        kwargs[f.name] = value
    return cls(**kwargs)


# `vad VERB --help` from a JSON copy of the verb's options, stamped with every source file of the packages that
# define them; any edit there (or another install) makes the copy stale and it is rebuilt from the classes. The
# config modules import no torch (tests/apps/test_cli.py checks it), so a rebuild costs only reading the sources.

def cached_config_options(configs: Mapping[str, str], cache_file: Path) -> list[Group | Option]:
    """:func:`config_options`, read from ``cache_file`` when its stamp still matches the sources, else computed
    (importing the configs) and written there. A copy that cannot be read or written is simply not used."""
    try:
        data = json.loads(cache_file.read_text(encoding="utf-8"))
        if data["configs"] == dict(configs) and data["stamp"] == source_stamp(data["packages"]):
            return [_decode(item) for item in data["items"]]
    except (OSError, ValueError, KeyError, TypeError, AttributeError, SyntaxError, NameError):
        pass
    items = config_options(configs)
    packages = sorted({"apps"} | {i.module.split(".")[0] for i in items if isinstance(i, Group)})
    encoded = [_encode(item) for item in items]
    try:
        if [_decode(e) for e in encoded] == items:  # only options that survive JSON exactly are cached
            payload = {"configs": dict(configs), "packages": packages, "stamp": source_stamp(packages),
                       "items": encoded}
            _write_atomic(cache_file, json.dumps(payload))
    except (OSError, ValueError, TypeError, SyntaxError, NameError):
        pass
    return items


def source_stamp(packages: Sequence[str]) -> str:
    """A digest of the path, size and mtime of every ``.py`` file of ``packages`` (found, not imported)."""
    digest = hashlib.sha256(f"{sys.version}|{version()}".encode())
    for package in packages:
        spec = importlib.util.find_spec(package)
        for root in (spec.submodule_search_locations or []) if spec else []:
            for path in sorted(Path(root).rglob("*.py")):
                st = path.stat()
                digest.update(f"{path}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def version() -> str:
    """The installed vadgraph version."""
    try:
        return importlib.metadata.version("vadgraph")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


_TYPE_NAMES = {"int": int, "float": float, "str": str, "bool": bool, "tuple": tuple, "list": list, "dict": dict,
               "None": None, "typing": typing}


def _encode(item: Group | Option) -> dict:
    if isinstance(item, Group):
        return {"group": dataclasses.asdict(item)}
    kind = item.type.__name__ if item.type in (int, float, str, bool) else repr(item.type)
    return {"option": {**dataclasses.asdict(item), "type": kind}}


def _decode(data: dict) -> Group | Option:
    if "group" in data:
        return Group(**data["group"])
    fields = dict(data["option"])
    fields["type"] = eval(fields["type"], {"__builtins__": {}}, dict(_TYPE_NAMES))  # a type's repr, written above
    if typing.get_origin(fields["type"]) is tuple and isinstance(fields["default"], list):
        fields["default"] = tuple(fields["default"])
    return Option(**fields)


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def help_cache(name: str) -> Path:
    """Where ``vad NAME --help`` keeps its options between runs."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "vadgraph" / f"cli-{name}.json"
