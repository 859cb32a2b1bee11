"""``python -m tada <command>``: convert official checkpoints, list and inspect variants, fetch weights.

Adding a command: put it in its own module with

* ``HELP``: a one-line description,
* ``configure(parser: argparse.ArgumentParser) -> None``: adds its arguments,
* ``run(args: argparse.Namespace) -> int | None``: does the work (exit status, None = 0),

and list it in :data:`EXTERNAL_COMMANDS`.  The module is imported only when its command runs (or for
``--help`` of that command), so a heavy command never slows the others down.  Errors raised by ``run``
are printed as one ``error:`` line on stderr with a non-zero exit status; set ``TADA_DEBUG=1`` to get
the traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from tada.errors import UserError

__all__ = ["main", "Command", "EXTERNAL_COMMANDS", "build_parser"]

#: Commands living in other modules: name -> module path (see the module docstring for the protocol).
EXTERNAL_COMMANDS: dict[str, str] = {"predict": "app.cli_predict"}
EXTERNAL_COMMANDS.update(train="tada.motion.train", evaluate="tada.motion.evaluate")  # bundled motion models
EXTERNAL_COMMANDS["batch"] = "tada.batch.cli"  # many videos: lists, summary, torchrun sharding
EXTERNAL_COMMANDS["compare"] = "app.cli_compare"  # 2-4 models on the identical frames of one clip


@dataclass(frozen=True)
class Command:
    """One subcommand: its help line, how it adds its arguments, and what it runs."""

    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int | None]


class CliError(UserError):
    """A user-facing error: printed as one line, exit status 1."""


# --- convert ---------------------------------------------------------------------------------------


def _configure_convert(p: argparse.ArgumentParser) -> None:
    p.add_argument("src", help="official checkpoint: TAdaConv .pyth or ILA .pth (also .safetensors)")
    p.add_argument("out_dir", help="folder to write model.safetensors, config.json and README.md into")
    p.add_argument("--variant", help="registered variant whose label set/preprocessing to attach (see `list`)")
    p.add_argument(
        "--override",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="construction parameter the checkpoint does not record, e.g. route_head_dim=48 (repeatable)",
    )


def _run_convert(args: argparse.Namespace) -> int:
    from tada import convert, hub

    out = convert.convert_checkpoint(args.src, args.out_dir, variant=args.variant, overrides=args.override)
    config = hub.read_model_config(out)
    name = config["pretrained_cfg"].get("tag") and f"{config['architecture']}.{config['pretrained_cfg']['tag']}"
    print(f"Converted {args.src} -> {out} ({name or config['architecture']}, {config['num_classes']} classes)")
    print(f'Load it with: tada.create_model("local-dir:{out}")')
    return 0


# --- list / info -----------------------------------------------------------------------------------


def _configure_list(p: argparse.ArgumentParser) -> None:
    p.add_argument("pattern", nargs="?", default="*", help="shell-style pattern, e.g. 'tadaformer*' (default: all)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _variant_row(name: str) -> dict[str, Any]:
    import tada
    from tada import hub

    cfg = tada.get_pretrained_cfg(name)
    return {
        "name": cfg.name,
        "frames": cfg.num_frames,
        "classes": cfg.num_classes,
        "label_set": cfg.label_set,
        "reported_top1": cfg.reported_top1,
        "reported_views": cfg.reported_views,
        "weights": hub.weights_status(cfg),
    }


def _top1(row: dict[str, Any]) -> str:
    if row["reported_top1"] is None:
        return "-"
    views = f" ({row['reported_views']})" if row["reported_views"] else ""
    return f"{row['reported_top1']:.1f}{views}"


def _run_list(args: argparse.Namespace) -> int:
    import tada

    pattern = args.pattern if any(c in args.pattern for c in "*?[") else f"*{args.pattern}*"
    rows = [_variant_row(n) for n in tada.list_models(pattern)]
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    if not rows:
        raise CliError(f"no variant matches '{args.pattern}'")
    header = ("NAME", "FRAMES", "CLASSES", "TOP-1", "WEIGHTS")
    table = [
        (
            r["name"],
            str(r["frames"]),
            f"{r['classes']} {r['label_set']}".strip(),
            _top1(r),
            r["weights"],
        )
        for r in rows
    ]
    widths = [max(len(row[i]) for row in (header, *table)) for i in range(len(header))]
    for row in (header, *table):
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    print(
        "\nWEIGHTS: bundled/cached/hub-cached = on this machine; hub/gdrive = downloaded on first "
        "pretrained=True; none = not released"
    )
    return 0


def _configure_info(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help="variant name (architecture.tag, or a unique prefix)")
    p.add_argument("--json", action="store_true", help="print the config as JSON")


def _run_info(args: argparse.Namespace) -> int:
    import tada
    from tada import hub

    cfg = tada.get_pretrained_cfg(args.name)
    data = cfg.to_dict()
    data["name"] = cfg.name
    data["weights"] = hub.weights_status(cfg)
    if cfg.tag:
        data["cache_dir"] = str(hub.cached_model_dir(cfg.name))
    if cfg.gdrive_id:
        data["official_url"] = hub.gdrive_view_url(cfg.gdrive_id)
    if args.json:
        print(json.dumps(data, indent=1))
        return 0
    width = max(len(k) for k in data)
    for key, value in data.items():
        if value in (None, "", {}, []):
            continue
        print(f"{key.ljust(width)}  {value if not isinstance(value, (list, tuple)) else list(value)}")
    return 0


# --- download --------------------------------------------------------------------------------------


def _configure_download(p: argparse.ArgumentParser) -> None:
    p.add_argument("names", nargs="+", help="variant names to fetch into the local cache")


def _run_download(args: argparse.Namespace) -> int:
    import tada
    from tada import hub

    for name in args.names:
        cfg = tada.get_pretrained_cfg(name)
        print(f"{cfg.name}: {hub.fetch_pretrained(cfg)}")
    return 0


# --- push ------------------------------------------------------------------------------------------


def _configure_push(p: argparse.ArgumentParser) -> None:
    p.add_argument("folder", help="a converted model folder (from `convert`)")
    p.add_argument("repo_id", help="Hugging Face Hub model repo, e.g. my-org/tadaconvnextv2_tiny.k400_16f_in1k")
    p.add_argument("--private", action="store_true", help="create the repo as private")


def _run_push(args: argparse.Namespace) -> int:
    from tada import hub

    url = hub.push_to_hub(args.folder, args.repo_id, private=args.private)
    print(f"Pushed {args.folder} -> {url}")
    print(f'Load it with: tada.create_model("hf-hub:{args.repo_id}")')
    return 0


BUILTIN_COMMANDS: dict[str, Command] = {
    "convert": Command("convert an official checkpoint into a model folder", _configure_convert, _run_convert),
    "list": Command("list variants (frames, classes, reported top-1, weights)", _configure_list, _run_list),
    "info": Command("show one variant's config and where its weights are", _configure_info, _run_info),
    "download": Command("fetch variants' weights into the local cache", _configure_download, _run_download),
    "push": Command("upload a converted model folder to the Hugging Face Hub", _configure_push, _run_push),
}


# --- dispatch --------------------------------------------------------------------------------------


def _load_external(name: str) -> Command:
    try:
        module = importlib.import_module(EXTERNAL_COMMANDS[name])
    except ImportError as exc:
        raise CliError(f"command '{name}' is not available here ({EXTERNAL_COMMANDS[name]}: {exc})") from exc
    return Command(getattr(module, "HELP", ""), module.configure, module.run)


def _command_help(name: str) -> str:
    if name in BUILTIN_COMMANDS:
        return BUILTIN_COMMANDS[name].help
    return f"(see `python -m tada {name} --help`)"


def build_parser(selected: str | None = None) -> tuple[argparse.ArgumentParser, dict[str, Command]]:
    """The argument parser; only ``selected``'s module is imported (all commands still appear in help)."""
    parser = argparse.ArgumentParser(
        prog="python -m tada",
        description="TAda Lab: temporal video models (TAdaConv family, ILA).",
    )
    subs = parser.add_subparsers(dest="command", metavar="COMMAND")
    subs.required = True
    commands: dict[str, Command] = {}
    for name in [*BUILTIN_COMMANDS, *EXTERNAL_COMMANDS]:
        if name == selected:
            commands[name] = BUILTIN_COMMANDS[name] if name in BUILTIN_COMMANDS else _load_external(name)
            sub = subs.add_parser(name, help=commands[name].help, description=commands[name].help)
            commands[name].configure(sub)
        else:
            subs.add_parser(name, help=_command_help(name), add_help=False)
    return parser, commands


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    if isinstance(exc, KeyError) and type(exc).__str__ is KeyError.__str__ and exc.args:
        text = str(exc.args[0])
    if isinstance(exc, (FileNotFoundError, PermissionError)) and exc.filename and exc.strerror:
        text = f"{exc.strerror}: {exc.filename}"
    return " ".join(text.split())


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    known = [*BUILTIN_COMMANDS, *EXTERNAL_COMMANDS]
    selected = next((a for a in argv if not a.startswith("-")), None)
    debug = os.environ.get("TADA_DEBUG", "").strip().lower() in {"1", "true", "yes", "on"}
    try:
        parser, commands = build_parser(selected if selected in known else None)
        args = parser.parse_args(argv)
        status = commands[args.command].run(args)
        return int(status or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except SystemExit as exc:  # argparse: usage errors (2) and --help (0)
        return exc.code if isinstance(exc.code, int) else 1
    except Exception as exc:  # noqa: BLE001 - the CLI contract: one line, never a traceback
        if debug:
            raise
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return 1
