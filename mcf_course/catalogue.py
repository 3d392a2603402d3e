"""The dataset index shown in the book, made from datasets/datapackage.json."""

from __future__ import annotations

import json
from pathlib import Path

from mcf_course.data import data_location, load_dataset


def dataset_catalogue(location: str | None = None) -> str:
    """A Markdown table: each dataset with its title, size, modules and a download link."""
    location = location or data_location()
    descriptor = json.loads((Path(location) / "datapackage.json").read_text(encoding="utf-8"))
    rows = ["| name | what it holds | rows | columns | modules | file |",
            "|---|---|---|---|---|---|"]
    for resource in descriptor["resources"]:
        frame = load_dataset(resource["name"], location)
        confidence = frame["confidence"].value_counts()
        summary = ", ".join(f"{confidence.get(level, 0)} {level}"
                            for level in ("high", "medium", "low"))
        modules = ", ".join(str(m) for m in resource.get("modules", []))
        rows.append(
            f"| `{resource['name']}` | {resource['title']} ({summary} confidence) "
            f"| {len(frame)} | {len(frame.columns)} | {modules} "
            f"| [{Path(resource['path']).name}](../datasets/{resource['path']}) |"
        )
    return "\n".join(rows)
