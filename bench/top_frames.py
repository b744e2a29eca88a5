"""Summarise py-spy's collapsed stacks: the share of samples in which each function
appears (inclusive) and is on top (self). ``python bench/top_frames.py FILE [N]``."""

import sys
from collections import Counter
from pathlib import Path


def main(path: str, top: int = 25) -> None:
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        stack, _, count = line.rstrip().rpartition(" ")
        n = int(count)
        frames = [f.split(" (")[0] + " " + f.split("/")[-1].rstrip(")") for f in stack.split(";")]
        total += n
        for frame in set(frames):
            inclusive[frame] += n
        own[frames[-1]] += n
    print(f"{total} samples")
    for frame, n in inclusive.most_common(top):
        print(f"{100 * n / total:5.1f}% incl {100 * own[frame] / total:5.1f}% self  {frame}")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 25)
