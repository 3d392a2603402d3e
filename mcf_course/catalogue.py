"""The dataset index shown in the book, made from datasets/datapackage.json."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from mcf_course.data import data_location, load_dataset
from mcf_course.display import markdown_text


def dataset_catalogue(location: str | None = None) -> str:
    """A Markdown table: each dataset with its title, size, modules and a download link."""
    location = location or data_location()
    descriptor = json.loads((Path(location) / "datapackage.json").read_text(encoding="utf-8"))
    rows = []
    for resource in descriptor["resources"]:
        frame = load_dataset(resource["name"], location)
        confidence = frame["confidence"].value_counts()
        summary = ", ".join(f"{confidence.get(level, 0)} {level}"
                            for level in ("high", "medium", "low"))
        rows.append({
            "name": f"`{resource['name']}`",
            "what it holds": f"{resource['title']} ({summary} confidence)",
            "rows": len(frame),
            "columns": len(frame.columns),
            "modules": ", ".join(str(m) for m in resource.get("modules", [])),
            "file": f"[{Path(resource['path']).name}](../datasets/{resource['path']})",
        })
    return markdown_text(pd.DataFrame(rows))
