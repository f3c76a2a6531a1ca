"""Tests of the command line ``python -m imagination allocate``."""

import math
import re
import subprocess
import sys

import mpmath
import pytest

from imagination import allocation
from imagination.__main__ import main


def _numbers(text, label):
    m = re.search(re.escape(label) + r"\s*=?\s*([0-9.eE+-]+)", text)
    assert m, f"{label!r} not in output:\n{text}"
    return float(m.group(1))


def test_subprocess_allocate_and_help():
    cmd = [
        sys.executable,
        "-m",
        "imagination",
        "allocate",
        "--budget",
        "1e5",
        "--dynamics",
        "3.0,0.35",
        "--reward",
        "5.0,0.6",
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    best = allocation.optimal_allocation(
        1e5, allocation.PowerLaw(3.0, 0.35), allocation.PowerLaw(5.0, 0.6)
    )
    assert _numbers(out.stdout, "N_d") == pytest.approx(
        best.n_dynamics, rel=1e-5
    )
    assert _numbers(out.stdout, "N_r") == pytest.approx(
        best.n_reward, rel=1e-5
    )
    bad = subprocess.run(
        cmd[:4] + ["--budget", "-5"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert bad.returncode == 2
    assert bad.stderr.count("\n") == 1 and "Traceback" not in bad.stderr
    assert "--budget" in bad.stderr


def test_help_explains_every_option(capsys):
    assert main(["allocate", "--help"]) == 0
    text = capsys.readouterr().out
    for opt in (
        "--budget",
        "--dynamics",
        "--reward",
        "--fit",
        "--cost-dynamics",
        "--cost-reward",
        "--weight-dynamics",
        "--weight-reward",
        "--gamma",
        "--lip-dynamics",
        "--lip-reward",
        "--lip-policy",
    ):
        assert opt in text


def test_main_with_weights_and_prices(capsys):
    code = main(
        [
            "allocate",
            "--budget",
            "2e4",
            "--dynamics",
            "1.0,0.5",
            "--reward",
            "2.0,0.5",
            "--cost-dynamics",
            "0.5",
            "--cost-reward",
            "4",
            "--weight-dynamics",
            "3",
        ]
    )
    assert code == 0
    text = capsys.readouterr().out
    best = allocation.optimal_allocation(
        2e4,
        allocation.PowerLaw(1.0, 0.5),
        allocation.PowerLaw(2.0, 0.5),
        cost_dynamics=0.5,
        cost_reward=4.0,
        weight_dynamics=3.0,
    )
    assert _numbers(text, "N_d / N_r") == pytest.approx(best.ratio, rel=1e-3)
    assert _numbers(text, "w_d*eps_d + w_r*eps_r") == pytest.approx(
        best.bound, rel=1e-5
    )
    half = 3.0 * 1.0 * (1e4 / 0.5) ** -0.5 + 2.0 * (1e4 / 4) ** -0.5
    assert _numbers(text, "bound at a 50/50 split") == pytest.approx(
        half, rel=1e-5
    )


def test_fifty_fifty_counts_beyond_the_float_range(capsys):
    """Issue 23: ``--cost-reward 1e-320`` printed ``N_r = inf`` at the 50/50 split."""
    argv = ["allocate", "--budget", "1e5", "--dynamics", "3.0,0.35"]
    code = main([*argv, "--reward", "5.0,0.6", "--cost-reward", "1e-320"])
    assert code == 0
    line = next(
        ln
        for ln in capsys.readouterr().out.splitlines()
        if ln.startswith("bound at a 50/50")
    )
    assert "inf" not in line
    n_r = re.search(r"N_r = ([0-9.]+)e\+(\d+)", line)
    assert n_r, line
    exact = 1e5 / 2 / 1e-320  # the price as parsed is the subnormal float
    digits = math.log10(1e5 / 2) - math.log10(float("1e-320"))
    assert int(n_r.group(2)) == math.floor(digits)
    assert float(n_r.group(1)) == pytest.approx(
        10 ** (digits - math.floor(digits)), rel=1e-5
    )
    assert math.isinf(exact)  # what the old code printed
    assert _numbers(line, "50/50 split") == pytest.approx(
        3.0 * 5e4**-0.35 + 5.0 * 10 ** (-0.6 * digits), rel=1e-5
    )


def test_ratio_beyond_the_float_range(capsys):
    """N_d / N_r of 7.4e420 was printed as inf (found by test_hostile_cli)."""
    code = main(
        ["allocate", "--budget", "1.01588e-96", "--dynamics", "1,0.5"]
        + ["--reward", "1,0.5", "--weight-dynamics", "1e308"]
        + ["--cost-dynamics", "5e-324"]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "= inf" not in out
    best = allocation.optimal_allocation(
        1.01588e-96,
        allocation.PowerLaw(1.0, 0.5),
        allocation.PowerLaw(1.0, 0.5),
        cost_dynamics=5e-324,
        weight_dynamics=1e308,
    )
    log10 = math.log10(best.n_dynamics) - math.log10(best.n_reward)
    m = re.search(r"N_d / N_r = ([0-9.]+)e\+(\d+)", out)
    assert m and int(m.group(2)) == math.floor(log10), out
    assert float(m.group(1)) == pytest.approx(
        10 ** (log10 - math.floor(log10)), rel=1e-3
    )


def test_bounds_below_the_float_range(capsys):
    """Steep laws put the bound below the smallest float: it was 0, and the 50/50 gain
    divided by it (ZeroDivisionError; found by test_hostile_cli)."""
    argv = ["allocate", "--budget", "1e5", "--dynamics", "1,68.0"]
    assert main([*argv, "--reward", "1,70.0"]) == 0
    out = capsys.readouterr().out
    best = allocation.optimal_allocation(
        1e5, allocation.PowerLaw(1.0, 68.0), allocation.PowerLaw(1.0, 70.0)
    )
    exact = (
        mpmath.mpf(best.n_dynamics) ** -68 + mpmath.mpf(best.n_reward) ** -70
    )
    m = re.search(r"w_r\*eps_r = ([0-9.]+)e-(\d+)", out)
    assert m, out
    log10 = float(mpmath.log10(exact))
    assert -int(m.group(2)) == math.floor(log10)
    assert float(m.group(1)) == pytest.approx(
        10 ** (log10 - math.floor(log10)), rel=1e-4
    )
    assert re.search(r"N_r = 50000; \+[0-9.]+%\)", out), out


def test_main_gamma_and_lipschitz(capsys):
    code = main(
        [
            "allocate",
            "--budget",
            "1e4",
            "--dynamics",
            "1,0.4",
            "--reward",
            "1,0.6",
            "--gamma",
            "0.9",
            "--lip-dynamics",
            "0.8",
            "--lip-reward",
            "1.5",
            "--lip-policy",
            "0.1",
        ]
    )
    assert code == 0
    w_d, w_r = allocation.bound_weights(0.8, 1.5, 0.1, 0.9)
    text = capsys.readouterr().out
    assert _numbers(text, "w_d") == pytest.approx(w_d, rel=1e-5)
    assert _numbers(text, "w_r") == pytest.approx(w_r, rel=1e-5)


def test_fit_from_csv_with_blank_cells(tmp_path, capsys):
    f = tmp_path / "errors.csv"
    f.write_text(
        "n,dynamics_error,reward_error\n100,0.3,0.2\n400,0.15,\n1600,,0.05\n6400,0.0375,\n"
    )
    assert main(["allocate", "--budget", "1e4", "--fit", str(f)]) == 0
    text = capsys.readouterr().out
    d = allocation.fit_power_law([100, 400, 6400], [0.3, 0.15, 0.0375])
    r = allocation.fit_power_law([100, 1600], [0.2, 0.05])
    assert d.exponent == pytest.approx(0.5) and r.exponent == pytest.approx(
        0.5
    )
    best = allocation.optimal_allocation(1e4, d, r)
    assert _numbers(text, "N_d") == pytest.approx(best.n_dynamics, rel=1e-5)
    assert "fitted to 3 points" in text and "fitted to 2 points" in text


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (
            [
                "allocate",
                "--budget",
                "0",
                "--dynamics",
                "1,0.5",
                "--reward",
                "1,0.5",
            ],
            "--budget",
        ),
        (
            [
                "allocate",
                "--budget",
                "10",
                "--dynamics",
                "1;0.5",
                "--reward",
                "1,0.5",
            ],
            "COEF,EXP",
        ),
        (
            [
                "allocate",
                "--budget",
                "10",
                "--dynamics",
                "1,-0.5",
                "--reward",
                "1,0.5",
            ],
            "EXP",
        ),
        (["allocate", "--budget", "10", "--reward", "1,0.5"], "--dynamics"),
        (
            [
                "allocate",
                "--budget",
                "10",
                "--dynamics",
                "1,0.5",
                "--reward",
                "1,0.5",
                "--gamma",
                "0.9",
            ],
            "--lip-dynamics",
        ),
        (
            [
                "allocate",
                "--budget",
                "10",
                "--dynamics",
                "1,0.5",
                "--reward",
                "1,0.5",
                "--gamma",
                "0.9",
                "--lip-dynamics",
                "2",
                "--lip-reward",
                "1",
                "--lip-policy",
                "0",
            ],
            ">= 1",
        ),
        (
            [
                "allocate",
                "--budget",
                "10",
                "--dynamics",
                "1,0.5",
                "--reward",
                "1,0.5",
                "--gamma",
                "1",
                "--lip-dynamics",
                "0.1",
                "--lip-reward",
                "1",
                "--lip-policy",
                "0",
            ],
            "[0, 1)",
        ),
        (
            [
                "allocate",
                "--budget",
                "10",
                "--dynamics",
                "1,0.5",
                "--reward",
                "1,0.5",
                "--gamma",
                "0.5",
                "--lip-dynamics",
                "0.1",
                "--lip-reward",
                "1",
                "--lip-policy",
                "0",
                "--weight-dynamics",
                "2",
            ],
            "not both",
        ),
        (
            [
                "allocate",
                "--budget",
                "10",
                "--dynamics",
                "1,0.5",
                "--reward",
                "1,0.5",
                "--lip-reward",
                "1",
            ],
            "need --gamma",
        ),
        (
            ["allocate", "--budget", "10", "--fit", "/nonexistent/errors.csv"],
            "cannot read",
        ),
        (["frobnicate"], "invalid choice"),
        ([], "COMMAND"),
    ],
)
def test_bad_input_is_one_line_and_status_2(argv, fragment, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert fragment in err and "Traceback" not in err


def test_bad_csv_contents(tmp_path, capsys):
    f = tmp_path / "e.csv"
    f.write_text("n,dynamics_error,reward_error\n100,0.3,0.2\n400,abc,0.1\n")
    assert main(["allocate", "--budget", "10", "--fit", str(f)]) == 2
    assert "line 3" in capsys.readouterr().err
    f.write_text("n,dynamics_error,reward_error\n100,0.3,0.2\n400,0.2,\n")
    assert main(["allocate", "--budget", "10", "--fit", str(f)]) == 2
    assert "at least two" in capsys.readouterr().err
    f.write_text("n,dynamics_error,reward_error\n100,0.1,0.2\n400,0.2,0.1\n")
    assert main(["allocate", "--budget", "10", "--fit", str(f)]) == 2
    assert "does not shrink" in capsys.readouterr().err
    # an explicit law overrides a column that is missing from the file
    f.write_text("n,reward_error\n100,0.2\n400,0.1\n")
    assert (
        main(
            [
                "allocate",
                "--budget",
                "10",
                "--fit",
                str(f),
                "--dynamics",
                "1,0.5",
            ]
        )
        == 0
    )
