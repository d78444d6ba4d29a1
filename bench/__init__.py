"""The benchmark harness: suites, workers, timing, results, comparison, reports.

Nothing here imports TensorFlow at module level; only the worker processes
that build or serve a Keras model do.
"""

__version__ = "0.1.0"
