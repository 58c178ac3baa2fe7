"""Showing runs: ``report.html`` (plots, results, recipe, provenance) and image grids.

* :mod:`.report`: reading a run directory's records and rendering its report page;
* :mod:`.image_grid`: rows of images as one uint8 grid (``contrastive preview``).
"""

from __future__ import annotations

from .image_grid import (
    BACKGROUND,
    MAX_GRID_PIXELS,
    MIN_CELL_PIXELS,
    PADDING,
    auto_scale,
    grid_shape,
    image_grid,
    to_display_uint8,
)
from .report import (
    INSTALL_HINT,
    KNOWN_CURVES,
    POSITION_KEYS,
    TIMING_KEYS,
    MatplotlibMissingError,
    RunRecords,
    curve,
    curve_keys,
    figure_png,
    format_value,
    load_figure_class,
    matplotlib_available,
    plot_curve,
    read_run,
    render_html,
    report_after_run,
    run_plots,
    write_report,
)

__all__ = [
    "BACKGROUND",
    "INSTALL_HINT",
    "KNOWN_CURVES",
    "MIN_CELL_PIXELS",
    "MAX_GRID_PIXELS",
    "PADDING",
    "POSITION_KEYS",
    "TIMING_KEYS",
    "MatplotlibMissingError",
    "RunRecords",
    "auto_scale",
    "curve",
    "curve_keys",
    "figure_png",
    "format_value",
    "grid_shape",
    "image_grid",
    "load_figure_class",
    "matplotlib_available",
    "plot_curve",
    "read_run",
    "render_html",
    "report_after_run",
    "run_plots",
    "to_display_uint8",
    "write_report",
]
