"""Files for people: the markdown report, the JSON summaries and the plots, from raw results."""

from mlmclm.report.write import write_analysis

__all__ = ["write_analysis"]
