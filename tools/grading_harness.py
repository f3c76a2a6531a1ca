"""The harness every generated otter test file carries (tools/assignments.py).

``tools/assignments.py`` copies this file's source into each test file and
appends the exercise's constants (``name``, ``_FUNCTIONS``, ``_PRELUDE``,
``_REFERENCES``, ``_PUBLIC``, ``_HIDDEN``, ``LIMIT_S``) and two otter test
cases. It is not imported by anything; it lives here so that it can be read,
linted and tested as ordinary code.

What it guarantees, inside the student's kernel:

* **Own names.** A test cell runs in a fresh namespace: the test's own
  imports (``_PRELUDE``) plus the student's functions named in
  ``_FUNCTIONS``, and nothing else from the notebook. A notebook variable
  that happens to share a name with the test's (``bounds``, ``R``, ``np``)
  cannot change what the test computes.
* **Untouched libraries.** Every library attribute and builtin a test cell
  uses (``np.allclose``, ``sp.simplify``, ``abs``) was recorded when the
  assignment was built (``_REFERENCES``: its kind, module and name). Before
  and after the tests run, each is checked again: a Python function must
  still be a function of that name whose code lives in its package's files,
  anything else must have the recorded type, module and name. A notebook
  that rebinds one fails the question, with a message that says so.
* **Readable feedback.** A failed public check reports the check's message
  (written to say what was expected and what came back) and the line of the
  check; a failed hidden test says only that it failed. When the grader
  sets ``IMAGINATION_GRADING_LOG``, the hidden test's line and message are
  appended there for the lecturer.
* **Points from correctness.** The public case is worth 0 points (it is the
  student's feedback); the graded case runs the public *and* hidden cells
  and carries the exercise's points: all or nothing.
"""
# ruff: noqa: N816

from __future__ import annotations

import ast as _ast
import builtins as _builtins
import json as _json
import os as _os
import signal as _signal
import sys as _sys
import threading as _threading
import traceback as _traceback
import types as _types

#: filled in per exercise by tools/assignments.py
name = "ex-harness"
_FUNCTIONS: list[str] = []
_PRELUDE = ""
_IMPORTS: list[str] = []
_REFERENCES: dict[str, list[str]] = {}
_PUBLIC: list[str] = []
_HIDDEN: list[str] = []
LIMIT_S = 60

_OUTCOME: dict[str, bool] = {}


#: A failed check, with the message the student sees (named so that otter
#: prints it as "AssertionError: <message>").
_Failed = type("AssertionError", (AssertionError,), {})


def _describe(obj) -> list[str]:
    """[kind, module root, name] of an object, as _REFERENCES records it."""
    if isinstance(obj, _types.ModuleType):
        return ["module", obj.__name__.split(".")[0], obj.__name__]
    module = getattr(obj, "__module__", None)
    if not isinstance(module, str):
        module = type(obj).__module__
    label = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", "")
    if isinstance(obj, _types.FunctionType):
        return ["function", module.split(".")[0], str(label)]
    if isinstance(obj, (int, float, complex, str, bool)) or obj is None:
        return ["value", type(obj).__name__, repr(obj)]
    if callable(obj):
        return [type(obj).__name__, module.split(".")[0], str(label)]
    return ["object", type(obj).__module__.split(".")[0], type(obj).__name__]


def _code_is_packaged(func, root: str) -> bool:
    """Whether a Python function's code lies in the files of package root."""
    package = _sys.modules.get(root)
    where = getattr(package, "__file__", None)
    filename = getattr(getattr(func, "__code__", None), "co_filename", "")
    if not where or not filename:
        return False
    folder = _os.path.dirname(_os.path.realpath(where))
    if _os.path.basename(where) != "__init__.py":  # a plain module (math)
        return _os.path.realpath(filename) == _os.path.realpath(where)
    return _os.path.realpath(filename).startswith(folder + _os.sep)


def _resolve(chain: str):
    """The object a recorded chain names: ``builtins:abs``, or a dotted path
    whose longest importable prefix is a module (``numpy.testing.x``)."""
    if chain.startswith("builtins:"):
        return getattr(_builtins, chain.split(":", 1)[1])
    parts = chain.split(".")
    for cut in range(len(parts), 0, -1):
        module = _sys.modules.get(".".join(parts[:cut]))
        if module is not None:
            obj = module
            for part in parts[cut:]:
                obj = getattr(obj, part)
            return obj
    raise KeyError(chain)


def _tampered() -> list[str]:
    """The recorded references that no longer are what they were."""
    bad = []
    for chain, want in _REFERENCES.items():
        shown = chain.removeprefix("builtins:")
        try:
            obj = _resolve(chain)
        except (KeyError, AttributeError):
            bad.append(f"{shown} is gone")
            continue
        got = _describe(obj)
        if got != list(want):
            bad.append(f"{shown} was replaced")
        elif got[0] == "function" and not _code_is_packaged(obj, got[1]):
            bad.append(f"{shown} was replaced by code outside {got[1]}")
    return bad


def _student_functions(env: dict) -> dict:
    found = {}
    for fname in _FUNCTIONS:
        obj = env.get(fname)
        if obj is None:
            raise _Failed(
                f"`{fname}` is not defined. Write it in the answer cell of "
                f"{name} and run that cell before the check."
            )
        if not callable(obj):
            raise _Failed(
                f"`{fname}` is a {type(obj).__name__}, not a function."
            )
        found[fname] = obj
    return found


def _limited(code, scope: dict, label: str) -> None:
    alarm = hasattr(_signal, "SIGALRM") and (
        _threading.current_thread() is _threading.main_thread()
    )
    if alarm:

        def stop(signum, frame):
            raise TimeoutError(
                f"{label} ran longer than {LIMIT_S} s (an endless loop?)"
            )

        previous = _signal.signal(_signal.SIGALRM, stop)
        _signal.alarm(LIMIT_S)
    try:
        exec(code, scope)
    finally:
        if alarm:
            _signal.alarm(0)
            _signal.signal(_signal.SIGALRM, previous)


def _where(err: BaseException, filename: str, source: str) -> tuple:
    """(line of the check that failed, whether the error came from inside
    the student's code)."""
    frames = _traceback.extract_tb(err.__traceback__)
    mine = [f for f in frames if f.filename == filename]
    line = ""
    if mine:
        lines = source.splitlines()
        n = mine[-1].lineno
        if n and 0 < n <= len(lines):
            line = _statement(source, n) or lines[n - 1].strip()
    inside = bool(frames) and frames[-1].filename != filename
    return line, inside


def _statement(source: str, n: int) -> str:
    """The innermost simple statement of ``source`` on line ``n``, on one
    line (an assert written over several lines, whole)."""
    try:
        tree = _ast.parse(source)
    except SyntaxError:
        return ""
    found = ""
    compound = (_ast.For, _ast.While, _ast.If, _ast.With, _ast.Try)
    for node in _ast.walk(tree):
        if (
            isinstance(node, _ast.stmt)
            and not isinstance(node, compound + (_ast.FunctionDef,))
            and node.lineno <= n <= (node.end_lineno or node.lineno)
        ):
            found = " ".join(
                (_ast.get_source_segment(source, node) or "").split()
            )
    return found if len(found) <= 240 else ""


def _log_hidden(index: int, line: str, err: BaseException) -> None:
    path = _os.environ.get("IMAGINATION_GRADING_LOG")
    if not path:
        return
    entry = {
        "question": name,
        "hidden_cell": index,
        "line": line,
        "error": f"{type(err).__name__}: {err}"[:2000],
    }
    try:
        with open(path, "a", encoding="utf-8") as f:
            f.write(_json.dumps(entry) + "\n")
    except OSError:
        pass


def _run_cells(public: bool, hidden: bool, funcs: dict) -> None:
    scope = {"__name__": "__otter_test__", "__builtins__": _builtins}
    exec(compile(_PRELUDE, f"<{name} imports>", "exec"), scope)
    scope.update(funcs)
    cells = []
    if public:
        cells += [("public", i, s) for i, s in enumerate(_PUBLIC, 1)]
    if hidden:
        cells += [("hidden", i, s) for i, s in enumerate(_HIDDEN, 1)]
    for which, index, source in cells:
        filename = f"<{name} {which} check {index}>"
        try:
            _limited(compile(source, filename, "exec"), scope, "the check")
        except Exception as err:
            line, inside = _where(err, filename, source)
            if which == "hidden":
                _log_hidden(index, line, err)
                if isinstance(err, TimeoutError):
                    raise _Failed(
                        f"the hidden tests of {name} failed: a call ran "
                        f"longer than {LIMIT_S} s"
                    ) from None
                raise _Failed(f"the hidden tests of {name} failed") from None
            message = str(err).strip() or "the check failed"
            if isinstance(err, AssertionError):
                text = message
            elif inside:
                text = f"your function raised {type(err).__name__}: {message}"
            else:
                text = f"{type(err).__name__}: {message}"
            if line:
                text += f"\n(in the check: `{line}`)"
            raise _Failed(text) from None


def _run(env: dict, kind: str) -> None:
    """One test case: the public cells, or the public and hidden cells."""
    funcs = _student_functions(env)
    for line in _IMPORTS:  # load what the references live in
        try:
            exec(line, {})
        except Exception:
            pass
    bad = _tampered()
    if bad:
        raise _Failed(
            "scored 0: the notebook changed functions the tests rely on ("
            + "; ".join(bad)
            + "). Restart the kernel and remove that code."
        )
    public = _OUTCOME.get("public")
    if kind == "hidden" and public is False:
        raise _Failed(
            f"the hidden tests of {name} were not run: the public check fails"
        )
    try:
        _run_cells(kind == "public" or public is None, kind == "hidden", funcs)
    except _Failed:
        if kind == "public":
            _OUTCOME["public"] = False
        raise
    finally:
        bad = _tampered()
    if bad:
        raise _Failed(
            "scored 0: calling the functions changed functions the tests "
            "rely on (" + "; ".join(bad) + ")"
        )
    if kind == "public":
        _OUTCOME["public"] = True
