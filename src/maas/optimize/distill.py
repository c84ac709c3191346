"""Knowledge distillation: train a small student on a teacher's softened answers.

The teacher is whatever a version serves, so it is read from its ONNX artifact with ONNX
Runtime (``teacher_logits``), once, over the training rows; the student then trains with
the ordinary trainer and ``distillation_loss``, which looks each batch's teacher rows up
by the indices the trainer passes. Hinton et al.'s objective::

    alpha * T^2 * KL(softmax(teacher / T) || softmax(student / T)) + (1 - alpha) * CE(student, y)

``T^2`` keeps the soft term's gradients on the scale of the hard one as ``T`` grows, so
``alpha`` means the same at any temperature; ``alpha = 0`` is plain cross-entropy.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from torch import nn

from maas.errors import InvalidInputError, describe
from maas.training.trainer import TrainingLoss

__all__ = ["check_student", "distillation_loss", "teacher_logits"]


class _DistillationLoss:
    """The objective as a ``TrainingLoss``; teacher logits follow the student's device once."""

    def __init__(self, teacher: torch.Tensor, temperature: float, alpha: float) -> None:
        self._teacher = teacher
        self._temperature = temperature
        self._alpha = alpha

    def __call__(
        self, logits: torch.Tensor, labels: torch.Tensor, batch_indices: torch.Tensor
    ) -> torch.Tensor:
        if self._teacher.device != logits.device:
            self._teacher = self._teacher.to(logits.device)
        t = self._temperature
        # Both sides as log-probabilities: a teacher probability that underflows to 0
        # would otherwise meet log(0) inside the KL term.
        soft = nn.functional.kl_div(
            nn.functional.log_softmax(logits / t, dim=1),
            nn.functional.log_softmax(self._teacher[batch_indices] / t, dim=1),
            reduction="batchmean",
            log_target=True,
        )
        hard = nn.functional.cross_entropy(logits, labels)
        return self._alpha * t * t * soft + (1.0 - self._alpha) * hard


def distillation_loss(
    teacher_logits: np.ndarray, *, temperature: float, alpha: float
) -> TrainingLoss:
    """The distillation objective for ``train(..., loss=...)``.

    ``teacher_logits`` holds one row per row of the dataset's ``x_train`` (in order), as
    ``teacher_logits()`` returns them; ``alpha`` in [0, 1] weighs the teacher's soft
    targets against the labels, ``temperature`` > 0 softens both distributions.

    >>> soft = teacher_logits(Path("teacher.onnx"), digits.x_train)  # doctest: +SKIP
    >>> objective = distillation_loss(soft, temperature=4.0, alpha=0.7)  # doctest: +SKIP
    >>> train(student, digits, config, loss=objective)  # doctest: +SKIP
    """
    if not temperature > 0:  # also refuses NaN
        raise InvalidInputError(
            f"temperature: must be > 0, got {temperature!r}",
            {"field": "temperature", "value": temperature},
        )
    if not 0 <= alpha <= 1:
        raise InvalidInputError(
            f"alpha: must be in [0, 1], got {alpha!r}", {"field": "alpha", "value": alpha}
        )
    logits = np.asarray(teacher_logits)
    if logits.ndim != 2 or not logits.size or not np.isfinite(logits).all():
        raise InvalidInputError(
            f"teacher: expected finite (rows, classes) logits, got shape {list(logits.shape)}",
            {"field": "teacher"},
        )
    teacher = torch.from_numpy(logits.astype(np.float32))  # astype copies: may be read-only
    return _DistillationLoss(teacher, float(temperature), float(alpha))


def _session(onnx_path: Path) -> ort.InferenceSession:
    try:
        return ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    except Exception as exc:  # ORT raises its own unexported classes for a bad file
        raise InvalidInputError(
            f"teacher: cannot load its ONNX artifact: {describe(exc)}", {"field": "teacher"}
        ) from exc


def _check_input(session: ort.InferenceSession, x: np.ndarray) -> str:
    """The input's name, once ``x``'s rows fit the shape the teacher declares."""
    inputs = session.get_inputs()
    declared = list(inputs[0].shape) if len(inputs) == 1 else []
    fits = len(declared) == x.ndim and all(
        not isinstance(d, int) or d == side
        for d, side in zip(declared[1:], x.shape[1:], strict=True)
    )
    if not fits:
        shapes = [["N", *arg.shape[1:]] for arg in inputs]
        raise InvalidInputError(
            f"teacher: its inputs {shapes} do not take the dataset's rows of shape "
            f"{list(x.shape[1:])}",
            {"field": "teacher"},
        )
    return str(inputs[0].name)


def teacher_logits(
    onnx_path: Path,
    x: np.ndarray,
    *,
    batch_size: int = 256,
    on_batch: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """The teacher's logits for every row of ``x``, float32 (rows, classes).

    Runs the ONNX artifact on the CPU in batches of ``batch_size``, reading its
    ``logits`` output (else its first); ``on_batch(done, batches)`` follows each batch
    and may raise to cancel.

    >>> teacher_logits(Path("teacher.onnx"), digits.x_train).shape  # doctest: +SKIP
    (1437, 10)
    """
    if batch_size < 1:
        raise InvalidInputError(
            f"batch_size: must be >= 1, got {batch_size!r}",
            {"field": "batch_size", "value": batch_size},
        )
    rows = np.asarray(x, dtype=np.float32)
    if rows.ndim < 2 or not len(rows):
        raise InvalidInputError(
            f"dataset: no rows to distil on (shape {list(rows.shape)})", {"field": "dataset"}
        )
    session = _session(onnx_path)
    input_name = _check_input(session, rows)
    names = [o.name for o in session.get_outputs()]
    output = "logits" if "logits" in names else names[0]
    batches = -(-len(rows) // batch_size)
    parts: list[np.ndarray] = []
    for done, start in enumerate(range(0, len(rows), batch_size), start=1):
        chunk = rows[start : start + batch_size]
        try:
            (logits,) = session.run([output], {input_name: chunk})
        except Exception as exc:  # ORT's runtime failures are unexported classes too
            raise InvalidInputError(
                f"teacher: failed on the dataset's rows: {describe(exc)}", {"field": "teacher"}
            ) from exc
        logits = np.asarray(logits)
        if logits.ndim != 2 or len(logits) != len(chunk):
            raise InvalidInputError(
                f"teacher: its {output!r} output has shape {list(logits.shape)} for "
                f"{len(chunk)} rows; distillation needs (rows, classes) logits",
                {"field": "teacher"},
            )
        parts.append(logits.astype(np.float32, copy=False))
        if on_batch is not None:
            on_batch(done, batches)
    return np.concatenate(parts)


def check_student(student: nn.Module, sample: torch.Tensor, teacher_classes: int) -> None:
    """Refuse a student whose logits cannot be matched with the teacher's, before training.

    ``sample`` holds a few input rows; the student runs on them in eval mode (its
    train/eval mode is restored after) and must return one (rows, ``teacher_classes``)
    tensor, as the trainer and ``distillation_loss`` expect.
    """
    was_training = student.training
    device = next((p.device for p in student.parameters()), torch.device("cpu"))
    student.eval()
    try:
        with torch.no_grad():
            result = student(sample.to(device))
    except Exception as exc:  # a user's factory may fail in any way on a wrong input
        raise InvalidInputError(
            f"student: fails on the dataset's rows: {describe(exc)}", {"field": "student"}
        ) from exc
    finally:
        student.train(was_training)
    if not isinstance(result, torch.Tensor) or result.dim() != 2:
        is_tensor = isinstance(result, torch.Tensor)
        got = f"shape {list(result.shape)}" if is_tensor else f"a {type(result).__name__}"
        raise InvalidInputError(
            f"student: must return one (rows, classes) logits tensor, got {got}",
            {"field": "student"},
        )
    if result.shape[1] != teacher_classes:
        raise InvalidInputError(
            f"student: the student answers {result.shape[1]} classes but the teacher "
            f"{teacher_classes}; build it with num_classes={teacher_classes}",
            {"field": "student"},
        )
