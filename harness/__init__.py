"""vlm-morality-bench: does a vision-language model answer like a decent person?

The public API mirrors the CLI::

    from harness import evaluate, load_model
    results = evaluate(model="oracle", tasks=["morality"], judges=["reference"])
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["BenchError", "evaluate", "load_model", "load_judge", "__version__"]

from harness.errors import BenchError
from harness.registry import load_judge, load_model


def evaluate(*args: Any, **kwargs: Any) -> Any:
    """Run tasks on a model and judge the answers; see ``harness.run.evaluate.evaluate``."""
    from harness.run.evaluate import evaluate as _evaluate

    return _evaluate(*args, **kwargs)
