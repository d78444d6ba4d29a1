"""Text classification: data sets, tokenization, the baseline BiGRU model and
its optimized variants.

Importing this package does not import TensorFlow, so that the benchmark's
LiteRT workers, its reports and its command-line help stay light. Modules
that need TensorFlow import it through :mod:`textcls.tf_env`.
"""

__version__ = "0.1.0"
