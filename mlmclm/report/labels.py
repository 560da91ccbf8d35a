"""How metrics, numbers and colours are shown, shared by the plots and the markdown report."""

from __future__ import annotations

from mlmclm.analysis.metrics import metric_info
from mlmclm.config import CORRECTIONS

# Okabe & Ito (2008), "Color Universal Design": distinguishable under the common colour-vision deficiencies.
OKABE_ITO = ("#E69F00", "#56B4E9", "#009E73", "#0072B2", "#D55E00", "#CC79A7", "#F0E442", "#000000")
CORRECTION_NAMES = CORRECTIONS  # display names of the p-value corrections, defined once beside the setting
OBJECTIVE_COLOURS = {"mlm": "#0072B2", "clm": "#D55E00", "clm_mlm": "#009E73", "mntp": "#CC79A7"}

def metric_label(metric: str) -> str:
    """``val_loss`` -> ``validation loss (nats per predicted token)``; probe metrics spelled out (metrics.py)."""
    return metric_info(metric).display_name


def direction_words(metric: str) -> str:
    return metric_info(metric).direction_words


def like_for_like_words(metric: str) -> str:
    """How the plots and the report say whether objectives can be ranked on ``metric`` (metrics.py)."""
    return "like for like" if metric_info(metric).like_for_like else "objectives score different tasks"


def fmt(value: float | None, digits: int = 4) -> str:
    """A number with ``digits`` significant digits, or ``n/a``."""
    return "n/a" if value is None else f"{value:.{digits}g}"


def fmt_p(value: float | None) -> str:
    if value is None:
        return "n/a"
    return "< 1e-4" if value < 1e-4 else f"{value:.3g}"


def colour_for(index: int) -> str:
    return OKABE_ITO[index % len(OKABE_ITO)]


# Curves that overlap must stay apart without colour (print, colour-vision deficiency): each index also gets
# its own line style and marker; 4 styles x 7 markers repeat only after 28 curves.
LINE_STYLES = ("-", "--", "-.", ":")
MARKERS = ("o", "s", "^", "D", "v", "P", "X")


def line_style_for(index: int) -> dict[str, str]:
    """Colour, line style and marker of the ``index``-th curve: no two of the first 28 look alike."""
    return {
        "color": colour_for(index),
        "linestyle": LINE_STYLES[index % len(LINE_STYLES)],
        "marker": MARKERS[index % len(MARKERS)],
    }
