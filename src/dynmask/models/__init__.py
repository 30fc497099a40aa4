"""Task models built from dynmask's modules."""

from .classifier import ARCHS, ClassifierConfig, TextClassifier

__all__ = ["TextClassifier", "ClassifierConfig", "ARCHS"]
