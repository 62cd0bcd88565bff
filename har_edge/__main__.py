from __future__ import annotations

import sys

from har_edge.cli import main

sys.exit(main())
