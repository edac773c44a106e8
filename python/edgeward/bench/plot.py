"""Charts of `edgeward bench` results (`--plot FILE`), with matplotlib: the
optional `plot` extra (`pip install 'edgeward[plot]'`). The format follows
the file's suffix (png, svg, pdf)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


class PlotUnavailable(RuntimeError):
    """matplotlib is not installed; the message says how to get it."""

    def __init__(self) -> None:
        super().__init__(
            "--plot needs matplotlib, which is not installed: pip install 'edgeward[plot]'"
            " (or the Debian package python3-matplotlib for the system Python)"
        )


def require() -> None:
    """`PlotUnavailable` unless a chart can be written (checked before a
    bench runs, not after)."""
    _pyplot()


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise PlotUnavailable() from None
    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    return plt


def policy_chart(result: dict[str, Any], path: Path) -> None:
    """µs per request by phase on each backend, and the costliest rules'
    and actions' µs per request."""
    plt = _pyplot()
    backends = result["backends"]
    figure, (phases, rules) = plt.subplots(1, 2, figsize=(13, 5.5))
    names = sorted({phase for data in backends.values() for phase in data["phases"]})
    width = 0.8 / max(1, len(backends))
    for n, (backend, data) in enumerate(backends.items()):
        xs = [i + n * width for i in range(len(names))]
        phases.bar(xs, [data["phases"].get(p, 0.0) for p in names], width, label=backend)
    phases.set_xticks([i + width * (len(backends) - 1) / 2 for i in range(len(names))], names)
    phases.set_ylabel("µs per request")
    phases.set_title("policy cost by phase")
    phases.legend()
    first = next(iter(backends.values()), None)
    if first is not None:
        rows = [(r["rule"], r["us_per_request"]) for r in first["rules"]][:15]
        rows.append(("(engine)", first["engine"]["us_per_request"]))
        labels = [label for label, _ in reversed(rows)]
        rules.barh(labels, [cost for _, cost in reversed(rows)])
        rules.set_xlabel("µs per request")
        rules.set_title(f"cost by rule ({first['backend']} backend), costliest on top")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def edge_chart(result: dict[str, Any], path: Path) -> None:
    """req/s and edge CPU µs per request, with and without the policy."""
    plt = _pyplot()
    edges = result["edges"]
    labels = ["with policy", "without policy"]
    keys = ["with_policy", "without_policy"]
    figure, (rate, cpu) = plt.subplots(1, 2, figsize=(10, 4.5))
    rate.bar(labels, [edges[k]["rps"] for k in keys], color=["tab:orange", "tab:blue"])
    rate.set_ylabel("requests per second")
    ratio = result.get("ratio")
    rate.set_title(
        f"throughput, endpoint {result['endpoint']}"
        + (f" (x{ratio:.2f} with the policy)" if ratio else "")
    )
    cpu.bar(
        labels, [edges[k]["cpu_us_per_request"] for k in keys], color=["tab:orange", "tab:blue"]
    )
    cpu.set_ylabel("edge CPU µs per request")
    cpu.set_title("CPU per request")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
