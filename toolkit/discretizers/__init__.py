"""Speech discretizers: learn a mapping from audio to one unit id per frame, save it, load it, encode with it.

The interface lives in base.py, the dispatch by type in registry.py; one module per discretizer type (mfcc_kmeans.py, ...).
"""

from toolkit.discretizers.base import Discretizer
from toolkit.discretizers.registry import fit_discretizer, load_discretizer

__all__ = ["Discretizer", "fit_discretizer", "load_discretizer"]
