"""The pytest plugin: hooks (the entry point, :mod:`.hooks`), fixtures, options, hookspecs, xdist
wiring and the :class:`~.session.DiffbenchSession` the hooks hand off to."""
