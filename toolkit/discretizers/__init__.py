"""Speech discretizers: learn a mapping from audio to one unit id per frame, save it, load it, encode with it.

The interface and the dispatch by type live in base.py; one module per discretizer type (mfcc_kmeans.py, ...).
"""

from toolkit.discretizers.base import Discretizer, fit_discretizer, load_discretizer

__all__ = ["Discretizer", "fit_discretizer", "load_discretizer"]
