#!/usr/bin/env python
"""Kept so older commands still work: the benchmark is the `bench` package, `python -m bench`."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository root, where bench/ lives
from bench.__main__ import main  # noqa: E402

sys.exit(main())
