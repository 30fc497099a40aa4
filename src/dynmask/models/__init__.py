"""Task models built from dynmask's modules."""

from .classifier import ARCHS, METHODS, ClassifierConfig, TextClassifier

__all__ = ["TextClassifier", "ClassifierConfig", "METHODS", "ARCHS"]
