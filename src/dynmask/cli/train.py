"""``dynmask train TASK``: one subcommand per registered task (:mod:`dynmask.tasks.registry`)."""

from __future__ import annotations

from ..errors import DataError
from ..tasks import TASKS


def register(sub) -> None:
    p = sub.add_parser("train", help="train a model")
    tasks = p.add_subparsers(dest="task", required=True, metavar="TASK")
    for spec in TASKS.values():
        q = tasks.add_parser(spec.name, help=spec.help)
        q.set_defaults(handler=_checked(spec.train))
        spec.add_arguments(q)


def _checked(train):
    """``train`` after the checks that span two flags (one flag's range is the parser's), so that a
    model that cannot be built is refused before anything is written to --output."""

    def run(args):
        d_model, heads = getattr(args, "d_model", None), getattr(args, "heads", None)
        if d_model is not None and heads is not None and d_model % heads:
            raise DataError(
                f"--d-model {d_model} must be a multiple of --heads {heads} (each head gets d_model / heads)"
            )
        return train(args)

    return run
