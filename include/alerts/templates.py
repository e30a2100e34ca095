"""Alert message templates: Jinja in a sandbox, compiled when definitions sync, rendered within limits.

An alert author's ``subject_template`` / ``message_template`` may not run for long or grow large:

* **output**: at most :data:`MAX_OUTPUT_CHARS` characters, counted while the template streams out;
* **time**: at most :data:`RENDER_TIMEOUT_SECONDS` of rendering, checked on every line the compiled
  template executes (a loop that prints nothing is stopped too);
* **single operations** that would build a huge value at once in C (``'x' * 10**9``,
  ``name.ljust(10**9)``, ``'%1000000000d' | format(1)``, ``2 ** 10**9``) are refused before they run.

Everything else is Jinja's :class:`~jinja2.sandbox.SandboxedEnvironment` (no attribute access to
internals, ``range`` capped at 100,000 items).
"""

from __future__ import annotations

import functools
import re
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

#: Longest rendered subject or message, in characters (Slack sections take 3,000; email bodies more).
MAX_OUTPUT_CHARS = 16_384
#: Longest rendering of one template.
RENDER_TIMEOUT_SECONDS = 1.0
_FORMAT_WIDTH = re.compile(r"%[-#0 +]*(\d+)|\{[^{}]*:[^{}]*?(\d+)[^{}]*\}")


class TemplateError(ValueError):
    """A template that does not compile, or went past its limits while rendering."""


def _too_big(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_OUTPUT_CHARS


def _check_arguments(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    for value in (*args, *kwargs.values()):
        if _too_big(value):
            raise TemplateError(f"a number argument above {MAX_OUTPUT_CHARS} ({value}) is refused in a template")
        if isinstance(value, str):
            widths = [int(w) for match in _FORMAT_WIDTH.finditer(value) for w in match.groups() if w]
            if any(w > MAX_OUTPUT_CHARS for w in widths):
                raise TemplateError(f"a format width above {MAX_OUTPUT_CHARS} is refused in a template")


def _bounded_filter(func: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(func)  # keeps Jinja's pass_context / pass_environment marks
    def bounded(*args: Any, **kwargs: Any) -> Any:
        _check_arguments(args, kwargs)
        return func(*args, **kwargs)

    return bounded


@functools.cache
def _environment():
    from jinja2 import StrictUndefined
    from jinja2.sandbox import SandboxedEnvironment

    class BoundedEnvironment(SandboxedEnvironment):
        intercepted_binops = frozenset({"*", "**", "%"})

        def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
            if operator == "**" and isinstance(right, int) and abs(right) > 64:
                raise TemplateError(f"an exponent above 64 ({right}) is refused in a template")
            if operator == "*":
                for sized, count in ((left, right), (right, left)):
                    sequence = isinstance(sized, (str, list, tuple)) and isinstance(count, int)
                    if sequence and len(sized) * count > MAX_OUTPUT_CHARS:
                        raise TemplateError(f"a value longer than {MAX_OUTPUT_CHARS} characters is refused")
            if operator == "%":
                _check_arguments((left,), {})
            return super().call_binop(context, operator, left, right)

        def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
            _check_arguments(args, kwargs)
            return super().call(__context, __obj, *args, **kwargs)

        def wrap_str_format(self, value: Any):
            if isinstance(getattr(value, "__self__", None), str):  # "{:>999999999}".format: the width is in it
                _check_arguments((value.__self__,), {})
            return super().wrap_str_format(value)

    env = BoundedEnvironment(undefined=StrictUndefined, autoescape=False)
    env.filters = {name: _bounded_filter(func) for name, func in env.filters.items()}
    return env


@functools.lru_cache(maxsize=512)
def compile_template(source: str):
    """The compiled template; :class:`TemplateError` naming the line when it does not compile."""
    from jinja2 import TemplateSyntaxError

    try:
        return _environment().from_string(source)
    except TemplateSyntaxError as error:
        raise TemplateError(f"line {error.lineno}: {error.message}") from None


@contextmanager
def _deadline(seconds: float) -> Iterator[None]:
    """Raise :class:`TemplateError` in the template's own code once ``seconds`` have passed."""
    deadline = time.monotonic() + seconds
    previous = sys.gettrace()

    def on_line(frame: Any, event: str, arg: Any):
        if time.monotonic() > deadline:
            raise TemplateError(f"rendering took longer than {seconds:g}s")
        return on_line

    def on_call(frame: Any, event: str, arg: Any):
        if time.monotonic() > deadline:
            raise TemplateError(f"rendering took longer than {seconds:g}s")
        return on_line if frame.f_code.co_filename == "<template>" else None

    sys.settrace(on_call)
    try:
        yield
    finally:
        sys.settrace(previous)


def render(
    source: str,
    variables: Mapping[str, Any],
    *,
    max_chars: int = MAX_OUTPUT_CHARS,
    timeout: float = RENDER_TIMEOUT_SECONDS,
) -> str:
    """Render ``source`` with ``variables`` within the limits; :class:`TemplateError` says which was passed."""
    from jinja2 import TemplateError as JinjaError

    template = compile_template(source)
    chunks: list[str] = []
    size = 0
    try:
        with _deadline(timeout):
            for chunk in template.generate(**variables):
                size += len(chunk)
                if size > max_chars:
                    raise TemplateError(f"the output is longer than {max_chars} characters")
                chunks.append(chunk)
    except TemplateError:
        raise
    except (JinjaError, ArithmeticError, TypeError, ValueError, LookupError, AttributeError) as error:
        raise TemplateError(f"{type(error).__name__}: {error}") from None
    return "".join(chunks)
