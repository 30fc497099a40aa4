"""``dynmask train TASK``: one subcommand per registered task (:mod:`dynmask.tasks.registry`)."""

from __future__ import annotations

from ..tasks import TASKS


def register(sub) -> None:
    p = sub.add_parser("train", help="train a model")
    tasks = p.add_subparsers(dest="task", required=True, metavar="TASK")
    for spec in TASKS.values():
        q = tasks.add_parser(spec.name, help=spec.help)
        q.set_defaults(handler=spec.train)
        spec.add_arguments(q)
