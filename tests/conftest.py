"""Session-wide test set-up.

The library's default data directory is ``$AUTOBALANCE_DATA``, else the user cache directory
(``autobalance.experiment.default_data_dir``). The benchmark data of this repository's
checkout live in ``../shared/data``: point ``AUTOBALANCE_DATA`` there when it exists and the
variable is unset, so that the tests which read real files (and the commands they start in
subprocesses, which inherit it) find them; those tests skip with a reason otherwise.
"""

from __future__ import annotations

import os
from pathlib import Path

from autobalance.experiment import DATA_ENV

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

if DATA_ENV not in os.environ and SHARED_DATA.is_dir():
    os.environ[DATA_ENV] = str(SHARED_DATA)
