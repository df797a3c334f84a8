"""What the report calls each logged metric, in one place: a table's column, a section's title, a figure panel's
title and the carry-over's geometry. The collapse metrics' labels are `collapse_names.LABELS` (one table of names and
labels, shared with `collapse_metrics`); the run's own metrics (death times, the ETF classifier's scale) are added
here. Strings only: no run folders, no numbers.

    LABELS["nc1"]["column"]   →  "NC1"
"""
from common.collapse_names import LABELS as COLLAPSE_LABELS

LABELS = {
    **{name: dict(column=l.column, section=l.heading, panel=l.title, geometry=l.legend)
       for name, l in COLLAPSE_LABELS.items()},
    "death_mean": dict(column="mean death time (run metric)", panel="mean death time per class"),
    "death_max": dict(panel="largest death time per class (mean over classes)"),
    "etf_scale": dict(panel="ETF classifier's learned scale s"),
}
