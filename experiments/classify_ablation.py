"""Where does the dynamic mask differ from the static placeholder baseline on text classification?

Runs ``dynmask demo``'s comparison (dynamic vs static, 3 seeds, Rotten Tomatoes) under variations of
training: no artificial holes at training time, and holes drawn once per example (static schedule).
Each setting's runs resume if interrupted.

    python experiments/classify_ablation.py      # writes results/ablation-rotten_tomatoes/
"""

from __future__ import annotations

import json
from pathlib import Path

from dynmask.demos.text import format_table, run_demo

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "results" / "ablation-rotten_tomatoes"
RUNS = ROOT / "runs" / "ablation"  # under the repository, wherever the script is run from
RATES = (0.0, 0.2, 0.4, 0.6)
SETTINGS = {
    "train without holes": dict(train_missing=0.0),
    "holes drawn once per example (static schedule)": dict(schedule="static"),
}


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    sections, combined = [], {}
    for name, kw in SETTINGS.items():
        slug = name.split(" (")[0].replace(" ", "-")
        result = run_demo(RUNS / slug, methods=("dynamic", "static"), test_rates=RATES, **kw)
        combined[name] = {"settings": kw, "summary": result["summary"]}
        sections.append(
            f"**{name}** ({', '.join(f'{k}={v}' for k, v in kw.items())})\n\n" + format_table(result["summary"], RATES)
        )
        (OUT / "results.json").write_text(json.dumps(combined, indent=2))
        (OUT / "results.md").write_text("\n\n".join(sections) + "\n")


if __name__ == "__main__":
    main()
