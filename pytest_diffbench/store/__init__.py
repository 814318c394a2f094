"""Everything diffbench keeps on disk: atomic writes, case paths, version-pinned baselines, the
run folder and results.csv."""
