"""bench.json and BENCHMARKS.md on disk: each section's record (its results with when, how long
and in which layout), the sections of an earlier run kept beside an --only run, and the writing
of both files."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

from .common import SECTIONS, log
from .report import render_markdown

FORMAT = 2  # of a section's JSON; sections of another format kept from an older bench.json are dropped


def section_record(results: dict, seconds: float, quick: bool) -> dict[str, Any]:
    """What bench.json keeps of one section: its results, FORMAT, and when and how it ran."""
    return {"results": results, "format": FORMAT, "seconds": round(seconds, 1), "quick": quick,
            "measured_at": dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
            "load_average_after": [round(x, 2) for x in os.getloadavg()]}


def kept_sections(path: Path) -> dict[str, dict]:
    """The sections of an earlier run to keep next to an --only run: those of this FORMAT only,
    since an older layout (say, before the onnx engine) would be mis-rendered."""
    try:
        sections = json.loads(path.read_text())["sections"]
    except (OSError, ValueError, KeyError):
        return {}
    stale = [name for name, section in sections.items() if section.get("format") != FORMAT]
    if stale:
        log(f"dropping sections of an older format from {path.name}: {', '.join(stale)}")
    return {name: section for name, section in sections.items() if name not in stale and name in SECTIONS}


def write(data: dict, out_json: Path, out_md: Path) -> None:
    """The raw figures, and the report rendered from exactly them."""
    out_json.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    out_md.write_text(render_markdown(data), encoding="utf-8")
    log(f"wrote {out_md} and {out_json}")
