"""The names of the neural-collapse metrics and their display labels, in one table. No torch, so that the report
needs none.

`collapse_metrics.collapse_metrics` returns one value per name of `COLLAPSE`, in its order (the metrics are defined,
with their formulas, in collapse_metrics.py, after V. Papyan, X. Y. Han and D. L. Donoho, "Prevalence of neural
collapse during the terminal phase of deep learning training", PNAS 117(40), 24652-24663, 2020); `LABELS` adds the
ratio the report computes from two of them. The report takes every label of a metric from here:

    LABELS["etf_distance_means"].column    'ETF dist. means'                   a table's column
    LABELS["etf_distance_means"].title     'ETF distance of class means'       a figure panel's title
    LABELS["etf_distance_means"].heading   'ETF distance of the class means'   a heading or a sentence
    LABELS["etf_distance_means"].legend    'ETF distance of the means'         after a set's name ('train ...') and
                                                                               where a legend explains it
"""
from dataclasses import dataclass


@dataclass(frozen=True)
class Label:
    """How the report names one metric.

    Attributes
    ----------
    column : str
        A table's column header, short: ``NC1``, ``ETF dist. means``.
    title : str
        A figure panel's title, with the formula where it fits: ``NC1  Tr(Σ_W Σ_B⁺)/C``.
    heading : str
        The metric in a heading or a sentence: ``ETF distance of the class means``; default: `column`.
    legend : str
        The metric after the name of a set (``train``, ``test``) in a column header, and where a legend explains it:
        ``ETF distance of the means``; default: `heading`.
    """
    column: str
    title: str
    heading: str = ""
    legend: str = ""

    def __post_init__(self):
        object.__setattr__(self, "heading", self.heading or self.column)
        object.__setattr__(self, "legend", self.legend or self.heading)


SPECTRUM = "between_class_spectrum"  # the one metric that is a list: the normalised eigenvalues of Σ_B
COLLAPSE = {  # every metric `collapse_metrics` returns, in the order it returns them: the scalars, then the spectrum
    "nc1": Label("NC1", "NC1  Tr(Σ_W Σ_B⁺)/C"),
    "nc2_equinorm_means": Label("NC2 equinorm means", "NC2 equinorm of class means std/mean ‖μ_c − μ_G‖"),
    "nc2_equinorm_classifiers": Label("NC2 equinorm W", "NC2 equinorm of classifiers std/mean ‖w_c‖"),
    "nc2_equiangular_means": Label("NC2 equiangular means",
                                   "NC2 equiangularity of class means std cos(μ_c − μ_G, μ_c′ − μ_G)"),
    "nc2_equiangular_classifiers": Label("NC2 equiangular W", "NC2 equiangularity of classifiers std cos(w_c, w_c′)"),
    "nc2_maxangle_means": Label("NC2 max-angle means", "NC2 max-angle of class means mean |cos + 1/(C−1)|"),
    "nc2_maxangle_classifiers": Label("NC2 max-angle W", "NC2 max-angle of classifiers mean |cos + 1/(C−1)|"),
    "etf_distance_means": Label("ETF dist. means", "ETF distance of class means",
                                heading="ETF distance of the class means", legend="ETF distance of the means"),
    "etf_distance_classifiers": Label("ETF dist. W", "ETF distance of classifiers W",
                                      heading="ETF distance of the classifiers"),
    "nc3_self_duality": Label("NC3 self-duality", "NC3 self-duality ‖W/‖W‖ − M/‖M‖‖²"),
    "nc4_ncc_mismatch": Label("NCC mismatch", "NC4 NCC mismatch"),
    "within_class_variation": Label("Tr Σ_W", "within-class variation Tr Σ_W"),
    "between_class_variation": Label("Tr Σ_B", "between-class variation Tr Σ_B"),
    SPECTRUM: Label("Σ_B spectrum", "normalised Σ_B spectrum"),
}
METRIC_NAMES = tuple(k for k in COLLAPSE if k != SPECTRUM)  # the scalars, in the order returned
LABELS = {  # COLLAPSE's labels and the report's ratio of two of its metrics, defined where NC1 is not
    **COLLAPSE,
    "scale_free_variation": Label("Tr Σ_W / Tr Σ_B", "within- over between-class variation Tr Σ_W / Tr Σ_B"),
}
