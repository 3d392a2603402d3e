"""Shared helpers for the course *Strategy Becomes Infrastructure*.

Notebooks and chapters import from here rather than copying code:

    from mcf_course import load_dataset
    timeline = load_dataset("policy_timeline")

The names below are loaded on first use, so that light tools in this package (such as the
grading sandbox, which starts every grading kernel) do not pay for importing pandas.
"""

__all__ = ["DataUnavailable", "DatasetError", "list_datasets", "load_dataset"]


def __getattr__(name):
    if name in __all__:
        from mcf_course import data

        return getattr(data, name)
    raise AttributeError(f"module 'mcf_course' has no attribute {name!r}")
