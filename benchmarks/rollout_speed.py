"""Command-line front end of :mod:`imagination.benchmark` (rollout speed).

Usage: ``python benchmarks/rollout_speed.py [--quick] [--json] [--sweep]``. ``--json`` prints one
line with keys ``jax_steps_per_s``, ``numpy_steps_per_s``, ``python_steps_per_s``,
``jax_flops_per_s``, ``roofline_flops_per_s`` (and more).
"""

from __future__ import annotations

import argparse
import json
import sys

from imagination import device
from imagination.benchmark import measure, sweep


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description="Rollout speed: JAX engine vs NumPy vs Python loop vs roofline"
    )
    ap.add_argument(
        "--quick",
        action="store_true",
        help="fewer repeats and a smaller Python subset",
    )
    ap.add_argument(
        "--json",
        action="store_true",
        help="print one JSON line instead of a table",
    )
    ap.add_argument(
        "--batch",
        type=int,
        default=4096,
        help="rollouts per batch (default 4096)",
    )
    ap.add_argument(
        "--horizon",
        type=int,
        default=50,
        help="steps per rollout (default 50)",
    )
    ap.add_argument(
        "--sweep",
        action="store_true",
        help="also sweep batch 2^8..2^16 (2^20 on a GPU) and horizon 10..400",
    )
    args = ap.parse_args(argv)
    if args.batch < 1 or args.horizon < 1:
        print("error: --batch and --horizon must be positive", file=sys.stderr)
        return 2
    repeats = 3 if args.quick else 7
    res = measure(args.batch, args.horizon, repeats, 16 if args.quick else 64)
    if args.sweep:
        top = 20 if device.on_accelerator() else 16
        res["sweep"] = sweep(
            [2**k for k in range(8, top + 1, 2)], [10, 25, 50, 100, 200, 400]
        )
    if args.json:
        print(json.dumps(res))
        return 0
    print(
        f"backend: {res['backend']} ({res['device']}), batch {res['batch']}, horizon {res['horizon']}"
    )
    print(
        f"  JAX engine   {res['jax_steps_per_s']:14,.0f} steps/s  "
        f"(compile {res['jax_compile_s']:.2f} s, run {res['jax_run_s'] * 1e3:.1f} ms)"
    )
    print(
        f"  NumPy batch  {res['numpy_steps_per_s']:14,.0f} steps/s  -> JAX is {res['speedup_vs_numpy']:.1f}x"
    )
    print(
        f"  Python loop  {res['python_steps_per_s']:14,.0f} steps/s  -> JAX is {res['speedup_vs_python']:.0f}x"
    )
    print(
        f"  roofline     {res['roofline_flops_per_s'] / 1e9:14.2f} GFLOP/s -> JAX reaches "
        f"{100 * res['fraction_of_roofline']:.0f}%"
    )
    print(
        f"  tanh alone   {res['activation_s'] * 1e3:14.1f} ms      -> JAX reaches "
        f"{100 * res['fraction_of_matmul_tanh_floor']:.0f}% of the matmul + tanh floor"
    )
    for row in res.get("sweep", []):
        print(
            f"  sweep batch {row['batch']:8d} horizon {row['horizon']:4d}: "
            f"{row['jax_steps_per_s']:14,.0f} steps/s, {100 * row['fraction_of_roofline']:.0f}% of roofline"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
