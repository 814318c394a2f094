"""Judging a case: the metric registry and its metrics, tolerances, checks, and the baseline
lifecycle (:func:`pytest_diffbench.judge.lifecycle.judge`), which is pure: no pytest, no torch,
no files. It also holds :class:`~pytest_diffbench.judge.result.CaseResult`, the record every
artifact reads.
"""
