"""Whether a pipeline passes ``mu`` is read from its ``__call__``'s source once per class (a
parse costs tens of ms and was asked several times per case), and the answer is still per class."""

from __future__ import annotations

import inspect
from typing import Any

from pytest_diffbench.run import schedulers


class PassesMu:
    def __call__(self, prompt: str) -> Any:
        return self.scheduler.set_timesteps(4, mu=0.5)  # type: ignore[attr-defined]


class NoMu:
    def __call__(self, prompt: str) -> Any:
        return self.scheduler.set_timesteps(4)  # type: ignore[attr-defined]


def test_each_class_source_is_read_once_and_answers_stay_per_class(monkeypatch) -> None:
    reads: list[Any] = []
    real = inspect.getsource

    def counted(obj: Any) -> str:
        reads.append(obj)
        return real(obj)

    monkeypatch.setattr(schedulers.inspect, "getsource", counted)
    answers = [schedulers.passes_mu(pipe, {}) for pipe in (PassesMu(), NoMu(), PassesMu(), NoMu(), PassesMu())]
    assert answers == [True, False, True, False, True]
    assert reads == [PassesMu.__call__, NoMu.__call__]
