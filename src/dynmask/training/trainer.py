"""One trainer for every task: AdamW with warm-up and linear decay, clipping, early stopping,
mixed precision where the device has it, progress, JSONL (+ TensorBoard) logs, atomic checkpoints,
exact resume, and data-parallel training under ``torchrun`` (DDP; gloo on CPU).

Exact resume: every random draw is a function of ``(seed, step)`` — the epoch's example order,
dropout (the global RNG is re-seeded each step) and a task's dynamic missingness — and the
checkpoint holds the model, optimizer, scheduler and position. A run interrupted after any
checkpoint and resumed ends with the same weights as one never interrupted.

A task is a :class:`dynmask.tasks.common.Task` (num_train, train_batch, loss, batch_size, evaluate,
save_assets); a :class:`~dynmask.tasks.common.LengthBucketed` one (``lengths()``) gets batches of
similar length.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import os
import re
import shutil
import time
from dataclasses import asdict
from pathlib import Path
from typing import Optional

import torch
import torch.distributed as dist
from safetensors.torch import save_model
from torch import nn

from ..devices import to_device
from ..files import as_created
from .checkpoints import (
    TrainState,
    average_weights,
    check_state,
    load_state,
    load_weights,
    parameter_checksum,
    savable,
    write_json,
)
from .config import TrainConfig
from .distributed import distributed_context
from .run_folders import (
    RunFolderError,
    compare_for_resume,
    read_json,
    verify_manifest,
    write_manifest,
)
from .task import TASK_METHODS, LengthBucketed, Task

__all__ = ["Trainer"]


class Trainer:
    def __init__(
        self,
        model: nn.Module,
        task: Task,
        config: TrainConfig,
        output: Path,
        run_config: dict,
        device: Optional[torch.device] = None,
    ) -> None:
        if not isinstance(task, Task):
            lacks = [m for m in TASK_METHODS if not callable(getattr(task, m, None))]
            raise TypeError(f"task must be a dynmask.tasks.common.Task; {type(task).__name__} lacks {lacks}")
        self.rank, self.world = distributed_context()
        if device is None:
            local_rank = int(os.environ.get("LOCAL_RANK", self.rank))
            device = (
                torch.device("cuda", local_rank % torch.cuda.device_count())
                if torch.cuda.is_available()
                else torch.device("cpu")
            )
        self.device = device
        self.model = model.to(self.device)
        self.task = task
        self.config = config
        self.output = Path(output)
        self.run_config = run_config
        self.main = self.rank == 0
        self.net = model
        if self.world > 1:
            self.net = nn.parallel.DistributedDataParallel(
                model, device_ids=None if self.device.type == "cpu" else [self.device.index]
            )
        decay = [p for n, p in model.named_parameters() if p.dim() > 1]
        no_decay = [p for n, p in model.named_parameters() if p.dim() <= 1]
        self.optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=config.lr,
        )
        n_mine = task.num_train() // self.world
        if n_mine < 1:
            raise ValueError(f"{task.num_train()} training examples cannot be shared by {self.world} processes")
        steps_per_pass = math.ceil(n_mine / config.batch_size)
        # a small training set is passed over several times per epoch (config.min_epoch_steps)
        self.passes = max(1, math.ceil(config.min_epoch_steps / steps_per_pass))
        self.steps_per_epoch = steps_per_pass * self.passes
        total = self.steps_per_epoch * config.epochs
        warm = max(1, int(config.warmup * total))
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda s: min((s + 1) / warm, max(0.0, (total - s) / max(1, total - warm)))
        )
        use_amp = config.amp == "on" or (config.amp == "auto" and self.device.type == "cuda")
        self.amp_dtype = (
            (torch.bfloat16 if self.device.type == "cpu" or torch.cuda.is_bf16_supported() else torch.float16)
            if use_amp
            else None
        )
        self.scaler = torch.amp.GradScaler(enabled=self.amp_dtype == torch.float16)
        self.state = TrainState()
        self._tb = None

    # ------------------------------------------------------------------ checkpoints
    @property
    def checkpoint_dir(self) -> Path:
        return self.output / "checkpoint"

    @property
    def epochs_dir(self) -> Path:
        """``epochs/epoch{E}.safetensors``: the weights at the last ``average_last`` epoch ends."""
        return self.output / "epochs"

    def _save_model_folder(self, folder: Path, extra: dict, model: Optional[nn.Module] = None) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        save_model(savable(model if model is not None else self.model), str(folder / "model.safetensors"))
        as_created(folder / "model.safetensors")
        write_json(folder / "config.json", {**self.run_config, **extra})
        self.task.save_assets(folder)

    def _atomic_folder(self, final: Path, fill, keep_previous: bool = False) -> None:
        """Fill ``final.tmp``, write and verify its manifest, then swap it in. With ``keep_previous`` the
        folder it replaces stays as ``final.prev`` (the fallback when the new one turns out damaged)."""
        tmp, old = final.with_name(final.name + ".tmp"), final.with_name(final.name + ".old")
        prev = final.with_name(final.name + ".prev")
        shutil.rmtree(tmp, ignore_errors=True)
        fill(tmp)
        write_manifest(tmp)
        verify_manifest(tmp, required=True)  # what was written reads back as written
        if final.exists():
            target = prev if keep_previous else old
            shutil.rmtree(target, ignore_errors=True)
            os.replace(final, target)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)

    def save_checkpoint(self, final: bool = False) -> None:
        """Write ``checkpoint/`` (the previous one kept as ``checkpoint.prev``). ``final``: the run has
        finished; unless ``keep_checkpoints``, the optimizer state is left out and ``checkpoint.prev``
        removed (a finished MiniLM run kept two 260 MB optimizer states that only a resume reads)."""
        if not self.main:
            return
        metrics = self.output / "metrics.jsonl"
        self.state.metrics_bytes = metrics.stat().st_size if metrics.exists() else 0
        slim = final and not self.config.keep_checkpoints

        def fill(folder: Path) -> None:
            self._save_model_folder(folder, {})
            write_json(folder / "state.json", asdict(self.state))
            if slim:
                return
            torch.save(
                {
                    "optimizer": self.optimizer.state_dict(),
                    "scheduler": self.scheduler.state_dict(),
                    "scaler": self.scaler.state_dict(),
                },
                folder / "training_state.pt",
            )

        self._atomic_folder(self.checkpoint_dir, fill, keep_previous=not slim)
        if slim:
            shutil.rmtree(self.output / "checkpoint.prev", ignore_errors=True)

    def _checkpoint_candidates(self) -> list[Path]:
        names = ("checkpoint", "checkpoint.prev", "checkpoint.old")  # .old: interrupted between two renames
        return [self.output / n for n in names if (self.output / n / "state.json").exists()]

    def _load_checkpoint_folder(self, folder: Path) -> None:
        verify_manifest(folder)
        saved = read_json(folder / "config.json")
        if isinstance(saved, dict):
            compare_for_resume(saved, self.run_config, str(self.output))
        state = read_json(folder / "state.json")
        known = {f for f in TrainState.__dataclass_fields__}
        if not isinstance(state, dict) or set(state) - known:
            raise RunFolderError(f"{folder / 'state.json'} is not a training state")
        check_state(state, folder / "state.json", self.steps_per_epoch * max(self.config.epochs, 1))
        try:
            load_weights(self.model, folder / "model.safetensors", self.device)
        except (RuntimeError, OSError, ValueError) as e:
            raise RunFolderError(
                f"{folder / 'model.safetensors'} cannot be loaded into this model: {str(e).splitlines()[0]}"
            ) from None
        if not (folder / "training_state.pt").exists() and state.get("finished"):
            # a finished run without --keep-checkpoints: training it on starts a fresh optimizer
            if self.main and self.config.progress:
                print(f"note: {folder} holds no optimizer state (the run had finished): a fresh optimizer trains on")
            self.state = TrainState(**state)
            return
        try:
            # weights_only: tensors, numbers and containers only -- a tampered file cannot run code
            training = torch.load(folder / "training_state.pt", map_location=self.device, weights_only=True)
        except Exception as e:  # UnpicklingError for forbidden globals; RuntimeError/EOFError for damage
            raise RunFolderError(
                f"{folder / 'training_state.pt'} was refused: it is damaged or holds objects "
                f"other than tensors and numbers ({type(e).__name__})"
            ) from None
        self.optimizer.load_state_dict(training["optimizer"])
        self.scheduler.load_state_dict(training["scheduler"])
        self.scaler.load_state_dict(training["scaler"])
        self.state = TrainState(**state)

    def load_checkpoint(self) -> bool:
        """Restore the newest checkpoint that verifies; a damaged newest one falls back to the previous
        one (with a message). Raises :class:`RunFolderError` when checkpoints exist but none verifies,
        or when the run's saved settings differ from this one's."""
        candidates = self._checkpoint_candidates()
        problems = []
        for folder in candidates:
            try:
                self._load_checkpoint_folder(folder)
            except RunFolderError as e:
                if str(e).startswith("cannot resume"):
                    raise
                problems.append(str(e))
                continue
            if problems and self.main:
                print(f"warning: {problems[0]}; resumed from the previous checkpoint {folder} instead", flush=True)
            return True
        if problems:
            raise RunFolderError("no checkpoint could be restored: " + "; ".join(problems))
        return False

    def _cut_metrics(self) -> None:
        """Drop metrics records written after the restored checkpoint: they will be written again."""
        metrics = self.output / "metrics.jsonl"
        if self.main and metrics.exists() and metrics.stat().st_size > self.state.metrics_bytes:
            with open(metrics, "r+b") as f:
                f.truncate(self.state.metrics_bytes)

    # ------------------------------------------------------------------ logging
    def _log(self, record: dict) -> None:
        if not self.main:
            return
        self.output.mkdir(parents=True, exist_ok=True)
        with open(self.output / "metrics.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")
        if self._tb is None:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self._tb = SummaryWriter(str(self.output / "tensorboard"))
            except Exception:  # TensorBoard not installed: JSONL only
                self._tb = False
        if self._tb:
            for k, v in record.items():
                if isinstance(v, (int, float)) and k not in ("step", "epoch"):
                    self._tb.add_scalar(f"{record.get('kind', 'train')}/{k}", v, record.get("step", 0))

    # ------------------------------------------------------------------ the loop
    def _order(self, epoch: int) -> list[list[int]]:
        """The batches of ``epoch``: its passes over the training set, each shuffled anew."""
        return [b for k in range(self.passes) for b in self._one_pass(epoch * self.passes + k)]

    def _one_pass(self, key: int) -> list[list[int]]:
        g = torch.Generator().manual_seed(self.config.seed * 7919 + key)
        perm = torch.randperm(self.task.num_train(), generator=g).tolist()
        n_mine = self.task.num_train() // self.world
        mine = perm[self.rank :: self.world][:n_mine]  # equal shares: every rank takes the same number of steps
        bs = self.config.batch_size
        if not isinstance(self.task, LengthBucketed):
            return [mine[i : i + bs] for i in range(0, n_mine, bs)]
        # length buckets: sort within chunks of 50 batches (little padding), then shuffle the batches
        lengths, chunk, batches = self.task.lengths(), 50 * bs, []
        for start in range(0, n_mine, chunk):
            part = sorted(mine[start : start + chunk], key=lambda i: lengths[i])
            batches += [part[i : i + bs] for i in range(0, len(part), bs)]
        shuffle = torch.randperm(len(batches), generator=torch.Generator().manual_seed(g.initial_seed() + 1))
        return [batches[i] for i in shuffle.tolist()]

    def _autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def fit(self, resume: bool = False) -> dict:
        if self.main:
            self.output.mkdir(parents=True, exist_ok=True)
        resumed = self.load_checkpoint() if resume else False
        if resume and not resumed and self.main and self.config.progress:
            print(f"no checkpoint in {self.checkpoint_dir}; starting from scratch")
        if resume:  # records after the restored checkpoint (or all of them, with none) are written again
            self._cut_metrics()
        cfg, st = self.config, self.state
        if st.finished and st.stopped != "early stopping" and st.epoch < cfg.epochs:
            st.finished = False  # --resume --epochs N on a finished run: train on to epoch N
        if st.finished:
            if self.config.average_last and st.averaged_epochs != self._epochs_to_average()[1]:
                self._average_last_epochs()  # --resume --average-last N on a finished run
                self.save_checkpoint(final=True)
            return self._summary(f"already finished ({st.stopped or 'epochs'})")
        from tqdm import tqdm

        stopped = "epochs"
        t_start, seen = time.perf_counter(), 0
        while st.epoch < cfg.epochs and st.bad_epochs < cfg.patience:
            batches = self._order(st.epoch)
            self.net.train()
            bar = tqdm(
                total=len(batches),
                initial=st.step_in_epoch,
                desc=f"epoch {st.epoch + 1}/{cfg.epochs}",
                disable=not (cfg.progress and self.main),
                leave=False,
                dynamic_ncols=True,
            )
            while st.step_in_epoch < len(batches):
                draw = st.global_step * self.world + self.rank
                torch.manual_seed(cfg.seed * 1_000_003 + draw)  # dropout depends on (seed, step, rank) only
                batch = to_device(self.task.train_batch(batches[st.step_in_epoch], draw), self.device)
                with self._autocast():
                    loss = self.task.loss(self.net, batch)
                if not torch.isfinite(loss):
                    raise FloatingPointError(
                        f"loss is {loss.item()} at step {st.global_step}; lower --lr or check the data"
                    )
                self.optimizer.zero_grad(set_to_none=True)
                self.scaler.scale(loss).backward()
                self.scaler.unscale_(self.optimizer)
                grad_norm = nn.utils.clip_grad_norm_(self.model.parameters(), cfg.clip_norm)
                self.scaler.step(self.optimizer)
                self.scaler.update()
                self.scheduler.step()
                st.step_in_epoch += 1
                st.global_step += 1
                seen += self.task.batch_size(batch) * self.world
                bar.update(1)
                bar.set_postfix(loss=f"{loss.item():.4f}")
                if st.global_step % cfg.log_every == 0:
                    self._log(
                        {
                            "kind": "train",
                            "step": st.global_step,
                            "epoch": st.epoch,
                            "loss": loss.item(),
                            "grad_norm": float(grad_norm),
                            "lr": self.scheduler.get_last_lr()[0],
                            "samples_per_s": seen / (time.perf_counter() - t_start),
                        }
                    )
                if cfg.max_steps is not None and st.global_step >= cfg.max_steps:
                    stopped = "max_steps"
                    break
                if cfg.checkpoint_every and st.global_step % cfg.checkpoint_every == 0:
                    self.save_checkpoint()
            bar.close()
            if stopped == "max_steps":
                self.save_checkpoint()
                break
            self._end_epoch()
            if st.bad_epochs >= cfg.patience:
                stopped = "early stopping"
                break
        if stopped == "epochs" and st.bad_epochs >= cfg.patience:  # resumed after the stopping epoch
            stopped = "early stopping"
        if stopped != "max_steps":
            self._average_last_epochs()
            st.finished, st.stopped = True, stopped
            self.save_checkpoint(final=True)
        return self._summary(stopped, seen / max(1e-9, time.perf_counter() - t_start))

    def _end_epoch(self) -> None:
        st = self.state
        self.net.eval()
        with torch.no_grad():
            metrics = self.task.evaluate(self.model)
        improved = metrics["score"] > st.best_score
        if improved:
            st.best_score, st.bad_epochs = metrics["score"], 0
            if self.main:
                self._atomic_folder(
                    self.output / "best",
                    lambda f: self._save_model_folder(f, {"epoch": st.epoch + 1, "valid": metrics}),
                )
        else:
            st.bad_epochs += 1
        if self.main and self.config.average_last:
            self._save_epoch_weights(st.epoch + 1)
        self._log({"kind": "valid", "step": st.global_step, "epoch": st.epoch + 1, **metrics, "improved": improved})
        if self.main and self.config.progress:
            shown = " ".join(f"{k}={v:.4f}" for k, v in metrics.items() if isinstance(v, float))
            print(f"epoch {st.epoch + 1}: {shown}{' (best)' if improved else ''}", flush=True)
        st.epoch += 1
        st.step_in_epoch = 0
        self.save_checkpoint()

    def _save_epoch_weights(self, epoch: int) -> None:
        """Keep this epoch end's weights for averaging (the last ``average_last`` of them), under a
        manifest so that a changed file is refused when they are averaged."""
        folder = self.epochs_dir
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f"epoch{epoch:04d}.safetensors.tmp"
        save_model(savable(self.model), str(tmp))
        as_created(tmp)
        os.replace(tmp, folder / f"epoch{epoch:04d}.safetensors")
        kept = set(self._epochs_to_average()[0])
        for old in folder.glob("epoch*.safetensors"):
            if old not in kept:
                old.unlink()
        write_manifest(folder)

    def _epochs_to_average(self) -> tuple[list[Path], list[int]]:
        """The last ``average_last`` saved epoch-end weight files, and their epochs."""
        found = {}  # epoch -> file; names not written by _save_epoch_weights are not weights of this run
        for f in self.epochs_dir.glob("epoch*.safetensors"):
            match = re.fullmatch(r"epoch(\d{4,})\.safetensors", f.name)
            if match:
                found[int(match.group(1))] = f
        epochs = sorted(found)[-self.config.average_last :]
        return [found[e] for e in epochs], epochs

    def _average_last_epochs(self) -> None:
        """Average the saved epoch ends; the average becomes best/ when it scores better on validation.

        Runs on the main process only (it alone writes ``epochs/`` and ``best/``). Idempotent: a resume
        interrupted here averages the same files again."""
        if not (self.main and self.config.average_last):
            return
        files, epochs = self._epochs_to_average()
        if len(files) < 2:
            if self.config.progress:
                print(f"average_last: {len(files)} epoch end saved in {self.epochs_dir}; nothing to average")
            return
        verify_manifest(self.epochs_dir, required=True)
        averaged = copy.deepcopy(self.model)
        load_state(averaged, to_device(average_weights(files), self.device), self.epochs_dir)
        averaged.eval()
        with torch.no_grad():
            metrics = self.task.evaluate(averaged)
        st = self.state
        st.averaged_epochs = epochs
        improved = metrics["score"] > st.best_score
        if improved:
            st.best_score = metrics["score"]
            self._atomic_folder(
                self.output / "best",
                lambda f: self._save_model_folder(
                    f, {"epoch": epochs[-1], "averaged_epochs": epochs, "valid": metrics}, averaged
                ),
            )
        self._log(
            {"kind": "valid", "step": st.global_step, "epoch": st.epoch, "averaged_epochs": epochs, **metrics,
             "improved": improved}
        )  # fmt: skip
        if self.config.progress:
            shown = " ".join(f"{k}={v:.4f}" for k, v in metrics.items() if isinstance(v, float))
            print(f"average of epochs {epochs}: {shown}{' (best)' if improved else ''}", flush=True)

    def _summary(self, stopped: str, samples_per_s: float = 0.0) -> dict:
        checksums = [parameter_checksum(self.model)]
        if self.world > 1:
            gathered: list = [None] * self.world
            dist.all_gather_object(gathered, checksums[0])
            checksums = gathered
        summary = {
            "stopped": stopped,
            "global_step": self.state.global_step,
            "epochs_done": self.state.epoch,
            "best_score": self.state.best_score,
            "train_samples_per_s": samples_per_s,
            "world_size": self.world,
            "rank_parameter_checksums": checksums,
        }
        self._log({"kind": "summary", "step": self.state.global_step, **summary})
        if self._tb:
            self._tb.flush()
        return summary
