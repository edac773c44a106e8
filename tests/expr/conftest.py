"""Prints the conformance pass counts per file at the end of the session."""

from __future__ import annotations

from typing import Any


def pytest_terminal_summary(terminalreporter: Any) -> None:
    from .test_conformance import CASES, RESULTS

    if not RESULTS:
        return
    write = terminalreporter.write_line
    write("")
    write("CEL conformance (cel-spec tests/simple/testdata), per backend and file:")
    for backend, files in sorted(RESULTS.items()):
        write(f"  {backend}:")
        total = {"pass": 0, "pass (compile error)": 0, "fail": 0, "skipped": 0, "cases": 0}
        for file in CASES:
            counts = files.get(file, {})
            ran = sum(counts.values())
            skipped = len(CASES[file]) - ran
            passed = counts.get("pass", 0) + counts.get("pass (compile error)", 0)
            write(
                f"    {file:<14} {passed:>4}/{ran:<4} passed"
                f" ({counts.get('pass (compile error)', 0)} as compile errors),"
                f" {counts.get('fail', 0)} failed, {skipped} skipped"
            )
            for key in ("pass", "pass (compile error)", "fail"):
                total[key] += counts.get(key, 0)
            total["skipped"] += skipped
            total["cases"] += len(CASES[file])
        passed = total["pass"] + total["pass (compile error)"]
        ran = total["cases"] - total["skipped"]
        write(
            f"    {'total':<14} {passed:>4}/{ran:<4} passed ({100 * passed / max(ran, 1):.1f}%),"
            f" {total['fail']} failed, {total['skipped']} skipped of {total['cases']}"
        )
