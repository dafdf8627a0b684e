"""``python -m vizcore``: the long jobs of the app, headless. Each command module adds its sub-commands.

Commands print human-readable text, or JSON with ``--json``; they call the same functions as the app.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys

# One module per area; each defines ``add_parser(subparsers)``.
COMMAND_MODULES = (
    "vizcore.cli.zoo_cmd", "vizcore.cli.visualize_cmd", "vizcore.cli.gradients_cmd", "vizcore.cli.knockout_cmd",
    "vizcore.cli.distill_cmd", "vizcore.cli.compress_cmd", "vizcore.cli.interpretability_cmd",
)


def emit(obj, as_json: bool, text: str | None = None) -> None:
    """Print ``obj`` as JSON, or ``text`` (default: indented JSON) for people."""
    if as_json or text is None:
        print(json.dumps(obj, indent=None if as_json else 2, default=str))
    else:
        print(text)


def add_data_args(p, dataset_help: str = "default: the model card's dataset", required: bool = False) -> None:
    """``--dataset`` and ``--data-root``, as every command that reads data takes them."""
    p.add_argument("--dataset", required=required, help="registry name, image-folder:PATH or npz:PATH"
                   + (f" ({dataset_help})" if dataset_help else ""))
    p.add_argument("--data-root", help="folder holding dataset files (default: $VIZCORE_DATA, the workspace, "
                                       "../shared/datasets, /usr/share/datasets)")


def add_model_args(p, dataset_help: str = "default: the model card's dataset") -> None:
    """``--model`` and the data arguments, as every command that explains a model takes them."""
    p.add_argument("--model", required=True, help="model id (zoo:NAME, user:NAME) or name")
    add_data_args(p, dataset_help)


def model_and_dataset(args, load: bool = True):
    """(entry, dataset, model) for ``args.model`` on ``args.dataset`` (default: its card's), checked to fit."""
    from vizcore import data, zoo

    entry = zoo.get_entry(args.model)
    ds = data.load_dataset(args.dataset or entry.card.dataset, root=args.data_root)
    if not zoo.fits(entry, ds):
        raise ValueError(f"{entry.id} takes input {entry.card.input_shape} with {entry.card.num_classes} classes; "
                         f"{ds.name} has {list(ds.input_shape)} with {ds.num_classes}")
    return entry, ds, zoo.load_model(entry) if load else None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m vizcore", description="vizcore: look inside image classifiers.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_parser(sub)
    return parser


def rank_zero_alone(command: str) -> bool:
    """Under torchrun, a command that is not sharded (``set_defaults(sharded=True)``: distill, distill-preset,
    train, compress) runs on rank 0 alone, which says so; whether this rank runs it."""
    from vizcore.core import distributed

    if distributed.world_size() > 1 and distributed.is_main():
        print(f"note: '{command}' is not sharded: rank 0 runs it alone", file=sys.stderr, flush=True)
    return distributed.is_main()


def main(argv: list[str] | None = None) -> int:
    """Run one command; under torchrun every rank runs it, joined in one process group for its duration."""
    from vizcore.core import distributed

    args = build_parser().parse_args(argv)
    distributed.init()
    try:
        if not getattr(args, "sharded", False) and not rank_zero_alone(args.command):
            return 0
        return int(args.func(args) or 0)
    except (ValueError, OSError, MemoryError) as e:  # our error types derive from ValueError and carry advice
        print(f"error: {e or type(e).__name__}", file=sys.stderr)
        return 2
    finally:
        distributed.teardown()
