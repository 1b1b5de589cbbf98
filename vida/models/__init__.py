"""Generators and classifiers: plain torch modules with the study's defaults."""

from vida.models.classifiers import LSTMClassifier, MLPClassifier, build_classifier
from vida.models.generators import LSTMGenerator

__all__ = ["LSTMClassifier", "LSTMGenerator", "MLPClassifier", "build_classifier"]
