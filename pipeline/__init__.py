"""CLIP feature-cache pipeline for domain generalisation on PACS.

Pure functions and small scikit-learn-style estimators; the DVC stages in ``stages/`` are thin
wrappers that read ``params.yaml`` and call into this package.
"""
__version__ = "0.1.0"
