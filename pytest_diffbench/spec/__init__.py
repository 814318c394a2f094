"""What a diffbench case is and what it produces, without torch or diffusers.

Sweeps and their cases, sampler names, the frozen config and its hash, outcomes and baseline
actions, the measurement of one generation and the machine it ran on. Every other sub-package
builds on these; this one imports none of them.
"""
