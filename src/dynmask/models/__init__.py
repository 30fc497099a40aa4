"""Task models built from dynmask's modules."""

from .classifier import METHODS, ClassifierConfig, TextClassifier

__all__ = ["TextClassifier", "ClassifierConfig", "METHODS"]
