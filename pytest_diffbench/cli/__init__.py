"""The ``diffbench`` command: look at finished runs, rebuild their reports, accept their outputs."""
