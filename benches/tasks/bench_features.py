"""rtl bench: features of cpu, mem and disk readings, row by row, as a
user's numpy function would compute them. `rtl bench` runs it as an
installed task and, for the reference, in one Python process
(benches/external_python.py)."""

import numpy as np


def features(table):
    cpu, mem, disk = table["cpu"], table["mem"], table["disk"]
    load = np.sqrt(cpu**2 + (mem / 40) ** 2 + (disk / 8) ** 2)
    table["load"] = load
    table["score"] = np.tanh(load / 100) * np.log1p(disk) + np.sin(cpu / 10) * np.cos(mem / 400)
    table["busy"] = load > 150
    return table


if __name__ == "__main__":
    from rtl_task import serve

    serve(features)
