"""Reading a JSON file with one-line errors that name the file."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from slssnn.errors import SlssnnError


def read_json(path: str | os.PathLike[str], what: str) -> Any:
    """Parse the JSON file at ``path``; ``what`` names it in errors ("run", "device model")."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise SlssnnError(f"{what} {path}: no such file") from exc
    except json.JSONDecodeError as exc:
        raise SlssnnError(f"{what} {path}: not a readable JSON file (JSONDecodeError: "
                          f"{exc.msg} at line {exc.lineno}, column {exc.colno})") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise SlssnnError(f"{what} {path}: not a readable JSON file "
                          f"({exc.__class__.__name__})") from exc
