"""What the report calls each logged metric, in one place: a table's column, a section's title, a figure panel's
title and the carry-over's geometry, for every metric that the tables and figures show (a kind is missing where
the report never shows the metric that way). Strings only: no run folders, no numbers.

    LABELS["nc1"]["column"]   →  "NC1"
"""
LABELS = {
    "nc1": dict(column="NC1", section="NC1", panel="NC1  Tr(Σ_W Σ_B⁺)/C"),
    "scale_free_variation": dict(column="Tr Σ_W / Tr Σ_B", geometry="Tr Σ_W / Tr Σ_B"),
    "etf_distance_means": dict(column="ETF dist. means", section="ETF distance of the class means",
                               panel="ETF distance of class means", geometry="ETF distance of the means"),
    "etf_distance_classifiers": dict(column="ETF dist. W", panel="ETF distance of classifiers W"),
    "nc3_self_duality": dict(column="NC3 self-duality", panel="NC3 self-duality ‖W/‖W‖ − M/‖M‖‖²"),
    "nc4_ncc_mismatch": dict(column="NCC mismatch", panel="NC4 NCC mismatch"),
    "within_class_variation": dict(column="Tr Σ_W", panel="within-class variation Tr Σ_W"),
    "between_class_variation": dict(column="Tr Σ_B"),
    "death_mean": dict(column="mean death time (run metric)", panel="mean death time per class"),
    "death_max": dict(panel="largest death time per class (mean over classes)"),
    "etf_scale": dict(panel="ETF classifier's learned scale s"),
}
