"""Class grading with ``mcf-grade``: nbgrader's pipeline, in parallel, each kernel sandboxed.

    command.py      the ``mcf-grade`` command and ``grade_class`` (the coordinator)
    submissions.py  finding and preparing submissions (LMS downloads, extra files)
    worker.py       worker processes running nbgrader's autograde, and their preprocessors
    claims.py       what a run holds on the machine: the course lock, sandbox uids, its scratch
    runner.py       test cells run in the worker, never in the student's kernel
    agent.py        the kernel's side of that: answers the worker's requests with plain data
    inspection.py   what a submission's code tries that an instructor should review
    sandbox.py      the bubblewrap sandbox, seen from the worker
    cgroups.py      memory and process limits for a whole sandbox
    parent.py       PID 1 inside a sandbox, which forks the kernels
    provisioner.py  the Jupyter kernel provisioner that starts kernels in the sandbox
    record.py       recording results in the course's gradebook; who was graded cleanly
    feedback.py     feedback from the notebook as handed in, plus the grader's marks
    safeguards.py   what the course's configuration adds to plain nbgrader autograde
    report.py       the instructor's HTML report
"""

__all__ = ["grade_class", "main"]


def __getattr__(name):
    if name in __all__:
        from mcf_course.grading import command

        return getattr(command, name)
    raise AttributeError(f"module 'mcf_course.grading' has no attribute {name!r}")
