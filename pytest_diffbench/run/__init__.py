"""Running a case: the built-in pipelines and loading, the pipeline's description and weight
fingerprint, one timed generation, the ``diffbench`` fixture's object, and the machine it ran
on. The only sub-package that imports torch and diffusers, and only when a case runs."""
