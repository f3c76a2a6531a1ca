"""Hostile input to ``imagination allocate``, property-based (hypothesis).

The property: exit status 0 with a result, or 2 with exactly one line on standard error; never a
traceback, never a warning. Most cases run :func:`imagination.__main__.main` in process (fast);
a smaller set runs the real ``python -m imagination`` subprocess.
"""

from __future__ import annotations

import contextlib
import io
import math
import subprocess
import sys
import warnings

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from imagination.__main__ import main

SETTINGS = dict(deadline=None, suppress_health_check=list(HealthCheck))

NUMBER_TEXT = st.one_of(
    st.sampled_from(
        [
            "0",
            "1",
            "0.5",
            "1e5",
            "5e-324",
            "1e-320",
            "1e308",
            "1.7976931348623157e308",
            "1e400",
            "inf",
            "-inf",
            "nan",
            "-1",
            "",
            "abc",
            "0x10",
            "1,2",
            "True",
            "½",
        ]
    ),
    st.floats().map(repr),
    st.text(max_size=6),
)
LAW_TEXT = st.one_of(
    st.tuples(NUMBER_TEXT, NUMBER_TEXT).map(",".join),
    st.sampled_from(["1,0.5", "3,0.35", "5,0.6", "1", "1,2,3", ","]),
)
OPTIONS = {
    "--budget": NUMBER_TEXT,
    "--dynamics": LAW_TEXT,
    "--reward": LAW_TEXT,
    "--cost-dynamics": NUMBER_TEXT,
    "--cost-reward": NUMBER_TEXT,
    "--weight-dynamics": NUMBER_TEXT,
    "--weight-reward": NUMBER_TEXT,
    "--gamma": st.one_of(NUMBER_TEXT, st.sampled_from(["0.5", "0.9", "0"])),
    "--lip-dynamics": st.one_of(NUMBER_TEXT, st.sampled_from(["2", "1"])),
    "--lip-reward": NUMBER_TEXT,
    "--lip-policy": NUMBER_TEXT,
}


@st.composite
def argv(draw):
    args = ["allocate", "--budget", draw(OPTIONS["--budget"])]
    if draw(st.booleans()):
        args += ["--dynamics", draw(LAW_TEXT), "--reward", draw(LAW_TEXT)]
    for opt in draw(
        st.lists(st.sampled_from(sorted(OPTIONS)), max_size=5, unique=True)
    ):
        args += [opt, draw(OPTIONS[opt])]
    return args


def _run_in_process(args):
    out, err = io.StringIO(), io.StringIO()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a warning would be printed: fail
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(args)
    return code, out.getvalue(), err.getvalue()


def _check(code, out, err):
    assert "Traceback" not in out + err
    assert "Warning" not in err
    if code == 0:
        assert "N_d =" in out and "nan" not in out.lower(), out
        assert "= inf" not in out, out  # a count is never printed as inf
        assert err == ""
    else:
        assert code == 2, (code, out, err)
        assert err.count("\n") == 1 and err.startswith("imagination"), err


@settings(max_examples=500, **SETTINGS)
@given(args=argv())
def test_allocate_in_process(args):
    _check(*_run_in_process(args))


@settings(max_examples=200, **SETTINGS)
@given(
    content=st.one_of(
        st.binary(max_size=200),
        st.text(max_size=200).map(lambda t: t.encode("utf-16")),
        st.lists(
            st.lists(
                st.one_of(
                    NUMBER_TEXT,
                    st.sampled_from(["n", "dynamics_error", "reward_error"]),
                ),
                min_size=1,
                max_size=4,
            ),
            max_size=6,
        ).map(lambda rows: "\n".join(",".join(r) for r in rows).encode()),
        st.sampled_from(
            [
                b"n,dynamics_error,dynamics_error,reward_error\n10,1,1,1\n"
                b"100,0.5,0.4,0.3\n",
                b"n,dynamics_error,reward_error\n10,1,1\n100,0.5,0.3\n",
                b"n,dynamics_error,reward_error\n10,1,1\n10,0.5,0.3\n",
                b"n,dynamics_error,reward_error\n1e-300,1e300,1\n1e300,1e-300,2\n",
                b"\xef\xbb\xbfn,dynamics_error,reward_error\n10,1,1\n100,.5,.3\n",
                b"n,dynamics_error,reward_error\n10,1,\x00\n",
            ]
        ),
    ),
    budget=st.sampled_from(["1e5", "0.5", "1e-320", "1e308"]),
)
def test_allocate_fit_file(tmp_path_factory, content, budget):
    path = tmp_path_factory.mktemp("fit") / "errors.csv"
    path.write_bytes(content)
    _check(
        *_run_in_process(["allocate", "--budget", budget, "--fit", str(path)])
    )


@settings(max_examples=12, **SETTINGS)
@given(args=argv())
def test_allocate_subprocess(args):
    assume(
        all("\x00" not in a for a in args)
    )  # the OS cannot pass a NUL in argv
    res = subprocess.run(
        [sys.executable, "-W", "default", "-m", "imagination", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    _check(res.returncode, res.stdout, res.stderr)


def test_issue_examples_cli(tmp_path):
    utf16 = tmp_path / "u16.csv"
    utf16.write_bytes("n,dynamics_error\n10,1\n".encode("utf-16"))
    dup = tmp_path / "dup.csv"
    dup.write_text("n,dynamics_error,dynamics_error,reward_error\n10,1,2,3\n")
    base = ["allocate", "--budget", "1e3", "--dynamics", "1,0.5"]
    lips = ["--lip-dynamics", "2", "--lip-policy", "0", "--gamma", "0.5"]
    code, out, err = _run_in_process(
        ["allocate", "--budget", "1", "--fit", str(utf16)]
    )
    assert code == 2 and "UTF-8" in err
    code, out, err = _run_in_process(
        ["allocate", "--budget", "1", "--fit", str(dup)]
    )
    assert code == 2 and "2 times" in err
    # gamma L = 1 exactly: the bound is infinite, said in one line
    code, out, err = _run_in_process(
        base + ["--reward", "1,0.5", *lips, "--lip-reward", "1"]
    )
    assert code == 2 and "infinite" in err
    # L_r = 0: the bound is finite (return_error_bound agrees) and ignores the dynamics
    code, out, err = _run_in_process(
        base + ["--reward", "1,0.5", *lips, "--lip-reward", "0"]
    )
    assert code == 2 and "infinite" not in err and "does not depend" in err
    from imagination import bounds

    assert math.isfinite(bounds.return_error_bound(1, 1, 2, 0, 0, 0.5))
    # below one sample: the result comes with a note
    code, out, err = _run_in_process(
        [
            "allocate",
            "--budget",
            "0.5",
            "--dynamics",
            "1,0.5",
            "--reward",
            "1,0.3",
        ]
    )
    assert code == 0 and "less than one" in out
