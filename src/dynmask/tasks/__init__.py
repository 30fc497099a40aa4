"""The tasks dynmask trains, one package each, registered here (:mod:`dynmask.tasks.registry`).

Adding a task: a package that defines a :class:`~dynmask.tasks.registry.TaskSpec`, and one line below.
"""

from . import classify, classify_series, forecast, impute, seq2seq
from .registry import TASKS, TaskSpec, get_task, register, task_names, task_of

register(classify.TASK)
register(seq2seq.TRANSLATE)
register(seq2seq.SUMMARIZE)
register(classify_series.TASK)
register(impute.TASK)
register(forecast.TASK)

__all__ = ["TASKS", "TaskSpec", "get_task", "register", "task_names", "task_of"]
