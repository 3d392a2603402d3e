import sys

from mcf_course.grading.command import main

sys.exit(main())
