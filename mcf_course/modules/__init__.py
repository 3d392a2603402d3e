"""One file per module: the figures, tables and explorers of that module's chapter.

Shared pieces live outside this folder: ``mcf_course.plotting`` (style, palette, drawing
helpers), ``mcf_course.display`` (tables), ``mcf_course.explorer`` (the explorer mechanism),
``mcf_course.timeline`` (the policy timeline, used by several modules).
"""
