"""HTML run reports: ``write_report(run_dir)`` → ``<run_dir>/report.html``."""

from bluerec.report.html import write_report

__all__ = ["write_report"]
