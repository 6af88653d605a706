"""Scenario reports as one Markdown table."""

from __future__ import annotations

from collections.abc import Sequence

from .verdict import Report

COLUMNS = (
    "scenario",
    "enqueued",
    "successful",
    "failed",
    "lost",
    "duplicates (bound)",
    "stuck",
    "limit violations",
    "double fires",
    "recovery s",
    "faults",
    "seconds",
)


def _cells(report: Report) -> list[str]:
    def maybe(value: object) -> str:
        return "-" if value is None else str(value)

    recovery = "-" if report.recovery_seconds is None else f"{report.recovery_seconds:.2f}"
    return [
        report.scenario,
        f"{report.enqueued:,}",
        f"{report.successful:,}",
        f"{report.failed:,}",
        str(report.lost),
        f"{report.duplicates} (≤{report.duplicate_bound})",
        str(report.stuck),
        maybe(report.violations),
        maybe(report.double_fires),
        recovery,
        str(report.faults),
        f"{report.seconds:.1f}",
    ]


def table(reports: Sequence[Report]) -> str:
    lines = [
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    lines += ["| " + " | ".join(_cells(report)) + " |" for report in reports]
    details = []
    for report in reports:
        for key, value in report.notes.items():
            details.append(f"- {report.scenario}: {key}: {value}")
        for problem in report.problems:
            details.append(f"- {report.scenario}: PROBLEM: {problem}")
    return "\n".join(lines + (["", *details] if details else []))
