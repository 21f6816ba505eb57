"""Knowledge distillation: a ``Distiller`` trains a student from a frozen teacher's logits
(here, beside ``Model``, since every Layer class lives in cnnkit.layers or cnnkit.models;
:mod:`cnnkit.deploy` re-exports it)."""

from __future__ import annotations

from typing import Any

from ..autograd import Tensor, no_grad
from ..train.losses import DistillationLoss, SparseCategoricalCrossentropy
from .model import Model


class Distiller(Model):
    """``Distiller(student, teacher)``, then ``compile(optimizer, metrics, alpha=,
    temperature=)`` and ``fit`` with every callback, as the Keras example's class.

    A training step computes the teacher's logits under ``no_grad`` (its weights and
    BatchNorm statistics never change) and minimises ``DistillationLoss``: alpha times the
    student's cross-entropy plus (1 - alpha) T^2 KL(softmax(teacher / T) || softmax(student /
    T)), both averaged over the batch. ``evaluate`` and ``predict`` run the student alone
    (the loss reported by evaluate is ``student_loss_fn``). Both models must output logits.
    Save the student (``distiller.student.save(path)``); the Distiller itself has no config.
    """

    def __init__(self, student: Any, teacher: Any, name: str = "distiller"):
        super().__init__(name=name)
        if not isinstance(student, Model) or not isinstance(teacher, Model):
            raise TypeError(f"Distiller expects a student and a teacher Model, got "
                            f"{type(student).__name__} and {type(teacher).__name__}")
        self.student = student
        self.teacher = teacher
        teacher.trainable = False
        self._teacher_logits: Any = None
        self.distillation_loss_fn: DistillationLoss = DistillationLoss()

    def compile(self, optimizer: Any = "adam", metrics: Any = None,
                student_loss_fn: Any = None, distillation_loss_fn: Any = None,
                alpha: float = 0.1, temperature: float = 3.0, **kwargs: Any) -> None:
        """``distillation_loss_fn`` (default ``DistillationLoss(temperature, alpha)``) gives
        the training loss; ``student_loss_fn`` (default sparse cross-entropy from logits) the
        loss ``evaluate`` reports."""
        if distillation_loss_fn is not None and not isinstance(distillation_loss_fn,
                                                               DistillationLoss):
            raise TypeError(f"Distiller.compile: distillation_loss_fn must be a "
                            f"DistillationLoss, got {type(distillation_loss_fn).__name__}")
        loss = student_loss_fn or SparseCategoricalCrossentropy(from_logits=True)
        super().compile(optimizer=optimizer, loss=loss, metrics=metrics, **kwargs)
        self.distillation_loss_fn = distillation_loss_fn or DistillationLoss(temperature, alpha)
        self._compile_config = None  # a Distiller is not saved; its student is

    def call(self, inputs: Any, training: bool = False) -> Any:
        """The student's logits; in training, the teacher's are kept for the loss."""
        if training:
            with no_grad():
                t = self.teacher(inputs, training=False)
            self._teacher_logits = t.data if isinstance(t, Tensor) else t
        return self.student(inputs, training=training)

    def _compute_loss(self, ys: list, outs: list, sample_weight: Any) -> Tensor:
        teacher, self._teacher_logits = self._teacher_logits, None
        if teacher is None:  # evaluate: the student's own loss
            return super()._compute_loss(ys, outs, sample_weight)
        total = self.distillation_loss_fn(ys[0], outs[0], teacher, sample_weight=sample_weight)
        for reg in self.student.losses:
            total = total + reg
        return total
