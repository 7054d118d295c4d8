"""A bench script's own folder, first on the import path → last.

bench/delivery.py has the package's name: with this folder first, `import delivery` would find it
instead of the package. Imported by each script before anything of the package; the folder stays
on the path, last, so the scripts still find each other.
"""

import sys
from pathlib import Path

FOLDER = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != FOLDER] + [str(FOLDER)]
