"""Reports of runs: tables (mean ± std over seeds, Pareto fronts), matplotlib figures of the
paper's kind (Li et al. 2021, Figs. 3–5) and ``report.md`` writers."""

from __future__ import annotations

from autobalance.report.markdown import (
    MarkdownReport,
    aggregate,
    cell_rows,
    class_accuracy,
    cluster_counts,
    write_comparison_report,
    write_run_report,
)
from autobalance.report.plots import (
    MISSING_PLOTS,
    plot_alpha_trajectory,
    plot_cell_errors,
    plot_error_curves,
    plot_group_curves,
    plot_pareto,
    plot_per_class_accuracy,
    plots_available,
)
from autobalance.report.tables import (
    compare_rows,
    fmt,
    fmt_mean_std,
    markdown_table,
    mean_std,
    pareto_front,
    text_table,
)

__all__ = [
    "MISSING_PLOTS",
    "MarkdownReport",
    "aggregate",
    "cell_rows",
    "class_accuracy",
    "cluster_counts",
    "compare_rows",
    "fmt",
    "fmt_mean_std",
    "markdown_table",
    "mean_std",
    "pareto_front",
    "plot_alpha_trajectory",
    "plot_cell_errors",
    "plot_error_curves",
    "plot_group_curves",
    "plot_pareto",
    "plot_per_class_accuracy",
    "plots_available",
    "text_table",
    "write_comparison_report",
    "write_run_report",
]
