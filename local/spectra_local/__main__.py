"""``python -m spectra_local``: run the local runtime (what ``make dev`` does)."""

import sys

from spectra_local.runtime import main

sys.exit(main())
