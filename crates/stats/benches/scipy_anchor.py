"""Times scipy.stats.mannwhitneyu (test only, no interval) on 10k vs 10k lognormal
samples, the anchor for the `mann_whitney_10k` bench. Run with the venv from
tests/fixtures/generate.py: /tmp/venv/stats/bin/python crates/stats/benches/scipy_anchor.py
"""
import timeit

import numpy as np
import scipy
from scipy import stats

rng = np.random.default_rng(2)
a = rng.lognormal(0, 1, 10_000)
b = rng.lognormal(0, 1, 10_000) * 1.05
n = 50
best = min(timeit.repeat(lambda: stats.mannwhitneyu(b, a, method="asymptotic"), number=n, repeat=5)) / n
print(f"scipy {scipy.__version__} mannwhitneyu 10k vs 10k: {best * 1e3:.3f} ms")
