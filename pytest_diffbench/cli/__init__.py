"""The ``diffbench`` command: look at finished runs, rebuild their reports, accept their outputs.

:mod:`.main` parses and dispatches, :mod:`.settings` finds the settings shared with pytest the
way pytest does, :mod:`.runs` finds run folders and reads them, :mod:`.commands` holds ``list``,
``show`` and ``report``, :mod:`.accept` holds ``accept``.
"""
