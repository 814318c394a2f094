"""What a run shows a reviewer, one module per artifact, each made from the run's
:class:`~pytest_diffbench.judge.result.CaseResult` list: the terminal table and summary.md,
JUnit properties, grids and sweep sheets, plot.png, report.html and the bundle.
:mod:`.artifacts` writes them one by one, so one that fails never takes the others down."""
