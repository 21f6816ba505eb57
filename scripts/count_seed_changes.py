"""Count the lines of a seed code sample that its port in examples/ had to change.

A sample line (non-blank, not comment-only, whitespace collapsed: the seed text lost its
indentation) counts as unchanged when an identical port line is left to match it; each port
line matches once. Usage: python scripts/count_seed_changes.py [SEEDS_DIR]
"""

import re
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# port file -> (seed file prefix, first line, last line) of the sample in the seed text
SAMPLES = {
    "seed004d_simple_cnn_train.py": ("004", 209, 289),
    "seed004e_image_classifier.py": ("004", 295, 342),
    "seed004h_augmentation.py": ("004", 426, 445),
}


def _lines(text: str) -> list[str]:
    out = []
    for raw in text.splitlines():
        line = re.sub(r"\s+", " ", raw).strip()
        if line and not line.startswith("#"):
            out.append(line)
    return out


def changed(sample: str, port: str) -> tuple[int, int]:
    """(sample lines, sample lines with no identical port line left)."""
    left = Counter(_lines(port))
    lines = _lines(sample)
    missing = 0
    for line in lines:
        if left[line]:
            left[line] -= 1
        else:
            missing += 1
    return len(lines), missing


def main() -> None:
    seeds = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT.parent / "shared" / "seeds"
    for port, (prefix, first, last) in SAMPLES.items():
        seed = next(seeds.glob(f"{prefix}_*.txt")).read_text(encoding="utf-8").splitlines()
        n, m = changed("\n".join(seed[first - 1:last]), (ROOT / "examples" / port).read_text())
        print(f"{port}: {n} lines, {m} changed")


if __name__ == "__main__":
    main()
