"""nbgrader configuration for this course (the course directory is the repository root).

solutions/<module>/  is the instructors' master notebook (solutions and hidden tests);
exercises/<module>/  is the student version, made from it by
    nbgrader generate_assignment <module> --force
and never edited by hand (tests/test_pipeline.py checks that they agree).
"""

c = get_config()  # noqa: F821 - provided by nbgrader when it loads this file

c.CourseDirectory.course_id = "mcf-industrial-internet"
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "exercises"
# Only notebooks are part of an assignment; data comes from the datasets/ folder.
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback"]

# Grading: every notebook runs on the same kernel, whatever the student's file says.
c.Execute.kernel_name = "python3"
c.Execute.timeout = 60  # seconds per cell; the longest solution cell takes about 2 s
c.Execute.interrupt_on_timeout = True
# Put back any graded or test cell a student deleted, so it is graded (as failing).
c.OverwriteCells.add_missing_cells = True

# What students see in place of a solution.
c.ClearSolutions.code_stub = {
    "python": '# YOUR CODE HERE\nraise NotImplementedError("Replace this line with your answer, as the question '
              'above asks, then run the test cell below it.")',
}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"

# Grading with plain nbgrader: a test cell's result is never partial credit and its stderr never a
# failure (mcf_course/grading/safeguards.py); each cell's outputs as handed in are kept for feedback.
from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor  # noqa: E402
from nbgrader.converters import Autograde  # noqa: E402
from nbgrader.preprocessors import GetGrades  # noqa: E402

from mcf_course.grading.feedback import FeedbackFromSubmission, KeepSubmittedOutputs  # noqa: E402
from mcf_course.grading.safeguards import autograde_preprocessors  # noqa: E402

_defaults = Autograde.class_traits()
c.Autograde.sanitize_preprocessors = [KeepSubmittedOutputs, *_defaults["sanitize_preprocessors"].default()]
c.Autograde.autograde_preprocessors = autograde_preprocessors(_defaults["autograde_preprocessors"].default())

# Feedback: the notebook as the student handed it in, the visible part of each test and the grader's
# marks; nothing produced while grading, so no hidden test in any form (mcf_course/grading/feedback.py).
c.GenerateFeedback.preprocessors = [GetGrades, FeedbackFromSubmission, CSSHTMLHeaderPreprocessor]
