"""rolling_mean: the mean of a column over the last `window` rows."""

import numpy as np

from rtl_task import serve


def rolling_mean(table, column, window=5):
    if window < 1:
        raise ValueError("window must be 1 or more, not %d" % window)
    x = table[column].astype(np.float64)
    sums = np.concatenate(([0.0], np.cumsum(x)))
    end = np.arange(1, len(x) + 1)
    start = np.maximum(end - window, 0)
    table[column + "Rolling"] = (sums[end] - sums[start]) / (end - start)
    return table


serve(rolling_mean)
