"""Shared helpers for the course *Strategy Becomes Infrastructure*.

Notebooks and chapters import from here rather than copying code:

    from mcf_course import load_dataset
    timeline = load_dataset("policy_timeline")
"""

from mcf_course.data import DatasetError, list_datasets, load_dataset

__all__ = ["DatasetError", "list_datasets", "load_dataset"]
