"""Plausible wrong answers to every autograded exercise (issue 22).

``WRONG[label][name]`` is a list of ``(old, new)`` edits applied to the
chapter's own answer cell: the kind of mistake a student makes (a missing
factor, an off-by-one, a sign, an answer right only for the defaults or the
chapter's numbers). ``tests/test_wrong_answers.py`` grades each through the
real grader and requires 0 points on its question. An edit whose ``old`` text
is no longer in the answer cell fails the test loudly (update the edit).
Nothing here reaches students: it lives in ``tests/``, not in the chapters.
"""

WRONG: dict[str, dict[str, list[tuple[str, str]]]] = {
    # -- chapter 1 ---------------------------------------------------------
    "ex-ch1-stability": {
        "forgets gamma f^2 = 1": [("first * H if x == 1 else first", "first")],
        "drops rho k^2": [
            ("first = -(q + rho * k**2) * s0**2", "first = -q * s0**2")
        ],
        "s0 instead of s0^2": [
            (
                "first = -(q + rho * k**2) * s0**2",
                "first = -(q + rho * k**2) * s0",
            )
        ],
        "forgets the discount": [
            (
                "x = sp.nsimplify(gamma) * sp.nsimplify(f) ** 2",
                "x = sp.nsimplify(f) ** 2",
            )
        ],
    },
    "ex-ch1-ensemble": {
        "noise not scaled": [
            (
                "return A + scale * jax.random.normal(",
                "return A + jax.random.normal(",
            )
        ],
        "rollouts without the discount": [
            ("horizon=horizon, gamma=gamma", "horizon=horizon, gamma=1.0")
        ],
        "Lyapunov without gamma": [
            (
                "np.eye(F.size) - gamma * np.kron(F.T, F.T)",
                "np.eye(F.size) - np.kron(F.T, F.T)",
            )
        ],
        "Lyapunov transposed": [
            (
                "np.eye(F.size) - gamma * np.kron(F.T, F.T)",
                "np.eye(F.size) - gamma * np.kron(F, F)",
            )
        ],
        "one draw for every member": [
            (
                "scale * jax.random.normal(key, (n_members, *np.shape(A)))",
                "scale * np.broadcast_to(jax.random.normal(key, np.shape(A)), (n_members, *np.shape(A)))",
            )
        ],
    },
    "ex-ch1-finite": {
        "gamma^(H-1)": [("gamma**H * F_H.T", "gamma ** (H - 1) * F_H.T")],
        "no gamma^H": [
            ("P - gamma**H * F_H.T @ P @ F_H", "P - F_H.T @ P @ F_H")
        ],
        "F^(H+1)": [("matrix_power(F, H)", "matrix_power(F, H + 1)")],
        "Kronecker transposed": [
            ("gamma * np.kron(F.T, F.T)", "gamma * np.kron(F, F)")
        ],
    },
    # -- chapter 2 ---------------------------------------------------------
    "ex-ch2-contracting": {
        "floor plus one": [
            (
                "    t = max(0, math.ceil(math.log(tol) / math.log(lip)))\n"
                "    while lip**t > tol:  # guard against rounding in the logarithms\n"
                "        t += 1\n"
                "    while t > 0 and lip ** (t - 1) <= tol:\n"
                "        t -= 1\n",
                "    t = math.floor(math.log(tol) / math.log(lip)) + 1\n",
            )
        ],
        "floor": [
            (
                "    t = max(0, math.ceil(math.log(tol) / math.log(lip)))\n"
                "    while lip**t > tol:  # guard against rounding in the logarithms\n"
                "        t += 1\n"
                "    while t > 0 and lip ** (t - 1) <= tol:\n"
                "        t -= 1\n",
                "    t = int(math.log(tol) / math.log(lip))\n",
            )
        ],
        "absolute, not relative, distance": [
            (
                "math.log(tol) / math.log(lip)",
                "math.log(tol * (1 - lip)) / math.log(lip)",
            ),
            ("while lip**t > tol:", "while lip**t > tol * (1 - lip):"),
            ("lip ** (t - 1) <= tol:", "lip ** (t - 1) <= tol * (1 - lip):"),
        ],
        "one step late": [
            (
                "        t -= 1\n    return t",
                "        t -= 1\n    return t + 1",
            )
        ],
    },
    "ex-ch2-opposed": {
        "gain |k|": [
            (
                "K = jnp.array([[k]], jnp.float32)",
                "K = jnp.array([[abs(k)]], jnp.float32)",
            )
        ],
        "drops delta_0": [
            (
                "return np.abs(np.asarray(gap, np.float64)[0, :, 0])",
                "return np.abs(np.asarray(gap, np.float64)[0, 1:, 0])",
            )
        ],
        "error scaled by p": [
            ("jnp.float32(c)), None, K)", "jnp.float32(p * c)), None, K)")
        ],
        "start state 0": [
            (
                "s0 = jnp.ones((1, 1), jnp.float32)",
                "s0 = jnp.zeros((1, 1), jnp.float32)",
            ),
            ("return np.abs(", "return 0 * np.abs("),
        ],
    },
    "ex-ch2-closed": {
        "Frobenius norms": [
            ("float(np.linalg.norm(M, 2))", "float(np.linalg.norm(M))")
        ],
        "sum for max": [
            (
                "max(norm(A), norm(B)) * (1 + norm(K))",
                "(norm(A) + norm(B)) * (1 + norm(K))",
            )
        ],
        "triangle bound for L_g": [
            ("return norm(A + B @ K),", "return norm(A) + norm(B) * norm(K),")
        ],
        "A - BK": [("return norm(A + B @ K),", "return norm(A - B @ K),")],
    },
    # -- chapter 3 ---------------------------------------------------------
    "ex-ch3-exchange": {
        "drops L_r": [
            (
                "(lip_dynamics + lip_reward) * (1.0 + lip_policy)",
                "lip_dynamics * (1.0 + lip_policy)",
            )
        ],
        "sum for product": [
            (
                "(lip_dynamics + lip_reward) * (1.0 + lip_policy)",
                "lip_dynamics + lip_reward + lip_policy",
            )
        ],
        "L_pi for 1 + L_pi": [("(1.0 + lip_policy)", "max(lip_policy, 1e-3)")],
        "one minus": [("return 1.0 / (", "return 1.0 - 1.0 / (")],
    },
    "ex-ch3-undiscounted": {
        "h (h + 1) / 2": [("h * (h - 1) / 2", "h * (h + 1) / 2")],
        "drops 1 + L_pi": [
            (
                "lip_reward * (1 + lip_policy) * eps_dynamics",
                "lip_reward * eps_dynamics",
            )
        ],
        "one reward error": [
            ("float(h * eps_reward + dyn)", "float(eps_reward + dyn)")
        ],
        "h^2 / 2": [("h * (h - 1) / 2", "h * h / 2")],
    },
    "ex-ch3-cancel": {
        "no discount": [("jnp.asarray([gamma])", "jnp.asarray([1.0])")],
        "offset not flipped": [
            ("(ts.model_reward[0], -ts.model_reward[1])", "ts.model_reward")
        ],
        "horizons 0 .. H - 1": [
            ("hs = jnp.arange(1, horizon + 1)", "hs = jnp.arange(horizon)")
        ],
        "model dynamics left out": [
            (
                "run(ts.model_dynamics, flipped)",
                "run(ts.true_dynamics, flipped)",
            )
        ],
    },
    # -- chapter 4 ---------------------------------------------------------
    "ex-alloc-1": {
        "not divided": [
            (
                "return ratio(factor * c_r) / ratio(c_r)",
                "return ratio(factor * c_r)",
            )
        ],
        "inverted": [
            (
                "return ratio(factor * c_r) / ratio(c_r)",
                "return ratio(c_r) / ratio(factor * c_r)",
            )
        ],
        "exponent 1/alpha": [
            (
                "    def ratio(price):",
                "    return float(factor ** (1 / alpha))\n\n    def ratio(price):",
            )
        ],
        "factor on c_d": [
            (
                "            cost_dynamics=c_d,\n            cost_reward=price,",
                "            cost_dynamics=c_d * price / c_r,\n            cost_reward=c_r,",
            )
        ],
    },
    "ex-alloc-2": {
        "bisection the wrong way": [
            (
                "(mid, hi) if money_share(np.exp(mid)) > 0.5 else (lo, mid)",
                "(lo, mid) if money_share(np.exp(mid)) > 0.5 else (mid, hi)",
            )
        ],
        "share of counts": [
            (
                "return best.n_dynamics / budget",
                "return best.n_dynamics / (best.n_dynamics + best.n_reward)",
            )
        ],
        "too few steps": [("for _ in range(200):", "for _ in range(20):")],
        "weights left out": [
            (
                "            weight_dynamics=w_d,\n            weight_reward=w_r,\n",
                "",
            )
        ],
    },
    "ex-alloc-3": {
        "power alpha": [("inner ** (1 + alpha)", "inner**alpha")],
        "budget^-(1 + alpha)": [("budget**-alpha", "budget ** -(1 + alpha)")],
        "prices without alpha": [
            (
                "(w_d * a_d * c_d**alpha) ** e + (w_r * a_r * c_r**alpha) ** e",
                "(w_d * a_d * c_d) ** e + (w_r * a_r * c_r) ** e",
            )
        ],
        "e = 1 / alpha": [("e = 1 / (1 + alpha)", "e = 1 / alpha")],
    },
    # -- chapter 5 ---------------------------------------------------------
    "ex-lip-1": {
        "forgets gamma": [
            (
                "return ratio / ((1 + ratio) * gamma)",
                "return ratio / (1 + ratio)",
            )
        ],
        "1 / (1 + ratio)": [
            (
                "return ratio / ((1 + ratio) * gamma)",
                "return 1 / ((1 + ratio) * gamma)",
            )
        ],
        "gamma inside": [
            (
                "return ratio / ((1 + ratio) * gamma)",
                "return ratio / (1 + ratio * gamma)",
            )
        ],
        "the chapter's numbers": [
            ("return ratio / ((1 + ratio) * gamma)", "return 10 / (11 * 0.99)")
        ],
    },
    "ex-lip-2": {
        "points as columns": [("axis=1)", "axis=0)")],
        "cosine for curvature": [
            (
                "return float(latent.curvature(z))",
                "return float(1 - latent.curvature(z))",
            )
        ],
        "delta spread over the path": [
            (
                "t = jnp.arange(n, dtype=jnp.float32)",
                "t = jnp.linspace(0, 1, n)",
            )
        ],
        "the chapter's delta": [
            (
                "z = rho * jnp.stack([jnp.cos(delta * t), jnp.sin(delta * t)], axis=1)",
                "z = rho * jnp.stack([jnp.cos(0.3 * t), jnp.sin(0.3 * t)], axis=1)",
            )
        ],
    },
    "ex-lip-3": {
        "Frobenius norms": [
            (
                "np.linalg.norm(np.asarray(W), 2)",
                "np.linalg.norm(np.asarray(W))",
            )
        ],
        "largest entry": [
            ("np.linalg.norm(np.asarray(W), 2)", "np.abs(np.asarray(W)).max()")
        ],
        "bias counted": [
            (
                "np.linalg.norm(np.asarray(W), 2) for W, _ in layers",
                "np.linalg.norm(np.asarray(W), 2) + np.linalg.norm(np.asarray(b)) for W, b in layers",
            )
        ],
        "sum for product": [("np.prod(", "np.sum(")],
    },
    # -- chapter 6 ---------------------------------------------------------
    "ex-noisy-martingale": {
        "pairs ordered by k": [
            (
                "        for j in range(n)\n        for k in range(j + 1, n)",
                "        for k in range(n)\n        for j in range(k)",
            )
        ],
        "j <= k": [("for k in range(j + 1, n)", "for k in range(j, n)")],
        "product of expectations": [
            (
                "expect(scores[j] * scores[k])",
                "expect(scores[j]) * expect(scores[k])",
            )
        ],
        "both orders": [
            (
                "for k in range(j + 1, n)",
                "for k in range(n)\n        if k != j",
            )
        ],
    },
    "ex-noisy-baseline": {
        "E[ge] for Cov(g, e)": [
            (
                "cov = expect(g * e) - expect(g) * expect(e)",
                "cov = expect(g * e)",
            )
        ],
        "sigma for sigma^2": [
            ("sigma**2 * (expect(e**2)", "sigma * (expect(e**2)")
        ],
        "no factor 2": [("2 * sigma * cov", "sigma * cov")],
        "E[e^2] for Var(e)": [
            ("(expect(e**2) - expect(e) ** 2)", "expect(e**2)")
        ],
    },
    "ex-noisy-correlated": {
        "tail not squared": [("np.sum(tail**2 * m)", "np.sum(tail * m)")],
        "head sums": [
            ("tail = np.cumsum(disc[::-1])[::-1]", "tail = np.cumsum(disc)")
        ],
        "uncorrelated G": [("np.sum(tail**2 * m)", "np.sum(disc**2 * m)")],
        "tail from j + 1": [
            (
                "tail = np.cumsum(disc[::-1])[::-1]",
                "tail = np.cumsum(disc[::-1])[::-1] - disc",
            )
        ],
    },
    "ex-noisy-heavy": {
        "k for k^2": [
            (
                "s = 1.0 / np.sqrt(1 - p + p * k**2)",
                "s = 1.0 / np.sqrt(1 - p + p * k)",
            )
        ],
        "one key for both draws": [
            ("k1, k2 = jax.random.split(key)", "k1 = k2 = key")
        ],
        "the defaults hard-coded": [
            (
                "s = 1.0 / np.sqrt(1 - p + p * k**2)",
                "p, k = 0.05, 4.0\n    s = 1.0 / np.sqrt(1 - p + p * k**2)",
            )
        ],
        "not normalised": [("s = 1.0 / np.sqrt(1 - p + p * k**2)", "s = 1.0")],
    },
    "ex-noisy-exchange": {
        "missing G": [("1.0 + sigma**2 * G / V0", "1.0 + sigma**2 / V0")],
        "2 sigma for sigma^2": [
            ("1.0 + sigma**2 * G / V0", "1.0 + 2 * sigma * G / V0")
        ],
        "sigma for sigma^2": [
            ("1.0 + sigma**2 * G / V0", "1.0 + sigma * G / V0")
        ],
        "inverted": [
            (
                "return 1.0 + sigma**2 * G / V0",
                "return V0 / (V0 + sigma**2 * G)",
            )
        ],
    },
    # -- chapter 7 ---------------------------------------------------------
    "ex-budget-1": {
        "missing G": [
            ("np.sqrt(v0 * kappa / (g * c0))", "np.sqrt(v0 * kappa / c0)")
        ],
        "no square root": [
            ("np.sqrt(v0 * kappa / (g * c0))", "v0 * kappa / (g * c0)")
        ],
        "missing V0": [
            ("np.sqrt(v0 * kappa / (g * c0))", "np.sqrt(kappa / (g * c0))")
        ],
        "inverted": [
            (
                "np.sqrt(v0 * kappa / (g * c0))",
                "np.sqrt(g * c0 / (v0 * kappa))",
            )
        ],
    },
    "ex-budget-2": {
        "rounded": [
            (
                "return int(cands[np.argmin(obj)])",
                "return int(max(1, round(m_cont)))",
            )
        ],
        "floor, may be 0": [
            (
                "return int(cands[np.argmin(obj)])",
                "return int(np.floor(m_cont))",
            )
        ],
        "ceiling": [
            (
                "return int(cands[np.argmin(obj)])",
                "return int(np.ceil(m_cont))",
            )
        ],
        "floor, at least 1": [
            (
                "return int(cands[np.argmin(obj)])",
                "return int(max(1, np.floor(m_cont)))",
            )
        ],
    },
    "ex-budget-3": {
        "v_min left out": [
            (
                "[[v_min], starts[(starts > v_min) & (starts <= v_max)]]",
                "[starts[(starts > v_min) & (starts <= v_max)]]",
            )
        ],
        "side left": [('side="right"', 'side="left"')],
        "cheapest tier": [
            ("return float(cands[np.argmin(obj)])", "return float(cands[-1])")
        ],
        "v_max left out": [
            (
                "starts[(starts > v_min) & (starts <= v_max)]",
                "starts[starts > v_min]",
            )
        ],
    },
    # -- chapter 8 ---------------------------------------------------------
    "ex-biased-constant": {
        "no factor 2": [
            (
                "return 2.0 * mu0 * cov_gh + mu0**2 * Eh2",
                "return mu0 * cov_gh + mu0**2 * Eh2",
            )
        ],
        "root without 2": [
            ("root = -2.0 * cov_gh / Eh2", "root = -cov_gh / Eh2")
        ],
        "unordered": [
            ("return (min(0.0, root), max(0.0, root))", "return (0.0, root)")
        ],
        "root sign": [
            ("root = -2.0 * cov_gh / Eh2", "root = 2.0 * cov_gh / Eh2")
        ],
    },
    "ex-biased-crossover": {
        "square of the sum": [
            ("np.sum(np.square(delta))", "np.square(np.sum(delta))")
        ],
        "not squared": [("np.sum(np.square(delta))", "np.sum(np.abs(delta))")],
        "norm, not squared": [
            ("np.sum(np.square(delta))", "np.linalg.norm(delta)")
        ],
        "sqrt V": [("float(V / ", "float(np.sqrt(V) / ")],
    },
    "ex-biased-action": {
        "sign of mu2": [
            ("return (q - mu1, rho - mu2)", "return (q - mu1, rho + mu2)")
        ],
        "both signs": [
            ("return (q - mu1, rho - mu2)", "return (q + mu1, rho + mu2)")
        ],
        "swapped": [
            ("return (q - mu1, rho - mu2)", "return (q - mu2, rho - mu1)")
        ],
        "mu2 left out": [
            ("return (q - mu1, rho - mu2)", "return (q - mu1, rho)")
        ],
    },
    "ex-biased-alltest": {
        "at or below": [
            ("np.asarray(p_values) < alpha", "np.asarray(p_values) <= alpha")
        ],
        "acceptance rate": [
            ("np.asarray(p_values) < alpha", "np.asarray(p_values) > alpha")
        ],
        "per column": [
            (
                "float(np.mean(np.asarray(p_values) < alpha))",
                "np.mean(np.asarray(p_values) < alpha, axis=0)",
            )
        ],
        "count over rows": [
            (
                "float(np.mean(np.asarray(p_values) < alpha))",
                "float(np.sum(np.asarray(p_values) < alpha) / len(p_values))",
            )
        ],
    },
    # -- chapter 9 ---------------------------------------------------------
    "ex-capstone-1": {
        "L_f L_pi": [
            (
                "np.asarray(lip_f, dtype=float) * (1 + lip_pi)",
                "np.asarray(lip_f, dtype=float) * lip_pi",
            )
        ],
        "swapped": [
            (
                "    return (\n        np.asarray(lip_f",
                "    return (\n        np.asarray(lip_r",
            ),
            (
                "        np.asarray(lip_r, dtype=float) * (1 + lip_pi),\n    )",
                "        np.asarray(lip_f, dtype=float) * (1 + lip_pi),\n    )",
            ),
        ],
        "lists, not arrays": [
            ("    lip_pi = np.asarray(lip_pi, dtype=float)\n", ""),
            ("np.asarray(lip_f, dtype=float)", "lip_f"),
            ("np.asarray(lip_r, dtype=float)", "lip_r"),
        ],
        "(1 + L_f) L_pi": [
            (
                "np.asarray(lip_f, dtype=float) * (1 + lip_pi)",
                "(1 + np.asarray(lip_f, dtype=float)) * lip_pi",
            )
        ],
    },
    "ex-capstone-2": {
        "eta without max": [
            (
                "eta = np.maximum(0.0, np.asarray(J_hat_other) - np.asarray(J_hat))",
                "eta = np.asarray(J_hat_other) - np.asarray(J_hat)",
            )
        ],
        "eta sign": [
            (
                "np.asarray(J_hat_other) - np.asarray(J_hat))",
                "np.asarray(J_hat) - np.asarray(J_hat_other))",
            )
        ],
        "one certificate": [
            (
                "rhs = np.asarray(J_other) - np.asarray(cert_other) - np.asarray(cert)",
                "rhs = np.asarray(J_other) - np.asarray(cert_other)",
            )
        ],
        "Python max": [("eta = np.maximum(0.0,", "eta = max(0.0,")],
    },
    "ex-capstone-3": {
        "1 / (1 + alpha) always": [
            (
                "    s_d = float(share_dynamics)",
                "    return 1 / (1 + alpha)\n    s_d = float(share_dynamics)",
            )
        ],
        "exponents swapped": [
            (
                "(1.0 + alpha) * s_r + (1.0 + beta) * s_d",
                "(1.0 + beta) * s_r + (1.0 + alpha) * s_d",
            )
        ],
        "reward share": [
            (
                "s_d = float(share_dynamics)",
                "s_d = 1.0 - float(share_dynamics)",
            )
        ],
        "numerator 1": [
            ("num = s_d + (1.0 + alpha - beta) * s_r", "num = 1.0")
        ],
    },
}
