"""Table 1 reproduction (Jiao et al. 2019, §3.2): train the seven recipes under one fixed step
budget, score each generator with `usmr_tf.metrics`, write a Markdown table in the shape of
Table 1 and a Fig. 3-style figure. See docs/results.md. Research output, not for diagnosis.
"""

from usmr_tf.evaluation.table import COLUMNS, ROWS, format_table

__all__ = ["COLUMNS", "ROWS", "format_table"]
