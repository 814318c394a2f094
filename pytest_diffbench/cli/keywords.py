"""``-k EXPR`` of the ``diffbench`` commands: pytest's own ``-k`` expression over a case's node id.

An expression is pytest's (``_pytest.mark.expression``): words joined by ``and``, ``or``,
``not`` and parentheses, e.g. ``test_red_circle and seed0`` or ``not (cfg7.5 or euler_a)``.
A word matches a case when it is a case-insensitive substring of the case's node id, as
pytest's keyword matching does with a test's names (``seed0``, ``test_red_circle[seed0-euler_a``,
``test_shapes.py::test_red_circle`` are each one word). Several ``-k`` widen the selection: a
case is chosen when it matches any of them.
"""

from __future__ import annotations

from typing import Callable, Sequence

from _pytest.mark import expression

from pytest_diffbench.cli.settings import CommandError

#: What pytest's expression parser raises for a bad expression: SyntaxError from pytest 8.2 on,
#: its own ParseError before.
_PARSE_ERRORS: tuple[type[Exception], ...] = (SyntaxError, getattr(expression, "ParseError", SyntaxError))


def keyword_filter(expressions: Sequence[str]) -> Callable[[str], bool]:
    """Whether a node id matches any of ``expressions`` (pytest ``-k`` expressions, see the module
    docstring); every node id matches when there are none.

    Raises :class:`~pytest_diffbench.cli.settings.CommandError` (one line naming the expression,
    where it is wrong and what was expected) for an expression pytest cannot parse, or one with
    call arguments (``name(x=1)``, which only ``-m`` takes).
    """
    compiled = [(text, _compile(text)) for text in expressions]

    def matches(nodeid: str) -> bool:
        lowered = nodeid.lower()

        def word(name: str, /, **kwargs: str | int | bool | None) -> bool:
            if kwargs:
                raise CommandError(f"-k {text!r}: a keyword expression takes no call arguments ({name}(...)); "
                                   "use words of the node id joined by and, or, not and parentheses")
            return name.lower() in lowered

        for text, compiled_expression in compiled:
            if compiled_expression.evaluate(word):
                return True
        return not compiled

    return matches


def _compile(text: str) -> expression.Expression:
    try:
        return expression.Expression.compile(text)
    except _PARSE_ERRORS as exc:
        detail = exc.msg if isinstance(exc, SyntaxError) else str(exc)
        column = f" at column {exc.offset}" if isinstance(exc, SyntaxError) and exc.offset else ""
        raise CommandError(f"-k {text!r} is not a valid expression{column}: {detail}; use words of the node id "
                           "joined by and, or, not and parentheses, as pytest's -k takes them") from None
