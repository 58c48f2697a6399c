"""Apply the two fixes lava-nc 0.10.0 and lava-dl 0.6.0 need on Python 3.11.

1. ``lava/magma/compiler/var_model.py``: Python 3.11 dataclasses reject the
   mutable default ``ByteEncoder()`` (eight fields); it becomes
   ``field(default_factory=ByteEncoder)``.
2. ``lava/lib/dl/slayer/__init__.py`` imports ``object_detection``, which
   needs cv2 and torchvision; netx imports slayer, so that one import is made
   optional.

The script recognises the exact files it patches by SHA-256: an unpatched
original is patched, an already patched file is left alone (idempotent), and
any other content (another version) stops it with exit status 1.

Usage: python scripts/patch_lava.py [SITE_PACKAGES]   (default: this interpreter's)
"""

from __future__ import annotations

import hashlib
import sys
import sysconfig
from pathlib import Path

VAR_MODEL = "lava/magma/compiler/var_model.py"
SLAYER_INIT = "lava/lib/dl/slayer/__init__.py"

ORIGINAL_SHA256 = {
    VAR_MODEL: "3b8acb73dc3ff38d159065aa0339b90f371f99f162e68d10a3117afbd916afa8",
    SLAYER_INIT: "24e528906eaff4e5af61b73e291b59e3d7fb6bad49b28841d247ad7318d953fd",
}
PATCHED_SHA256 = {
    VAR_MODEL: "2fc7130d0c978a12f364bdb0ff1182481230a56f816d21ee4042428d24f87f61",
    SLAYER_INIT: "d8b153a4fda20bdf27d6a037ad126f3b6596a2e2721a7ab9764767ba39279a23",
}


def patch_var_model(text: str) -> str:
    text = text.replace(
        "from dataclasses import dataclass, InitVar",
        "from dataclasses import dataclass, InitVar, field",
        1,
    )
    count = text.count("ByteEncoder = ByteEncoder()")
    if count != 8:
        raise RuntimeError(f"{VAR_MODEL}: expected 8 ByteEncoder defaults, found {count}")
    return text.replace("ByteEncoder = ByteEncoder()",
                        "ByteEncoder = field(default_factory=ByteEncoder)")


def patch_slayer_init(text: str) -> str:
    old = "from . import object_detection as obd\n"
    new = (
        "try:  # patched by slssnn: object_detection needs cv2 and torchvision\n"
        "    from . import object_detection as obd\n"
        "except ImportError:  # pragma: no cover\n"
        "    obd = None\n"
    )
    if text.count(old) != 1:
        raise RuntimeError(f"{SLAYER_INIT}: object_detection import not found")
    return text.replace(old, new)


PATCHES = {VAR_MODEL: patch_var_model, SLAYER_INIT: patch_slayer_init}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def main(argv: list[str]) -> int:
    site = Path(argv[1]) if len(argv) > 1 else Path(sysconfig.get_paths()["purelib"])
    for rel, patch in PATCHES.items():
        path = site / rel
        if not path.is_file():
            print(f"patch_lava: {path} not found (is lava-nc 0.10.0 / lava-dl 0.6.0 installed?)",
                  file=sys.stderr)
            return 1
        digest = sha256(path.read_bytes())
        if digest == PATCHED_SHA256[rel]:
            print(f"patch_lava: {rel} already patched")
            continue
        if digest != ORIGINAL_SHA256[rel]:
            print(f"patch_lava: {path} has unknown content (sha256 {digest}); "
                  "expected lava-nc 0.10.0 / lava-dl 0.6.0", file=sys.stderr)
            return 1
        patched = patch(path.read_text())
        if sha256(patched.encode()) != PATCHED_SHA256[rel]:
            print(f"patch_lava: patching {rel} gave unexpected content", file=sys.stderr)
            return 1
        path.write_text(patched)
        print(f"patch_lava: patched {rel}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
