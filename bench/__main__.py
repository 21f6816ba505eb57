"""``python -m bench``: the workload benchmark (see :mod:`bench.run`)."""

from .run import main

raise SystemExit(main())
