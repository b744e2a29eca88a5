#!/usr/bin/env python3
"""Print the runtime dependencies of pyproject.toml, one per line (Dockerfile).

The Dockerfile installs these in a layer of their own, before the source is
copied, so a code change does not reinstall them. Names given with
``--exclude`` are left out: the Docker-free dev stack's broker and PostgreSQL
wheels (``make run`` only) have no place in the service image.
"""

import argparse
import re
import tomllib


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("pyproject")
    parser.add_argument("--exclude", nargs="*", default=[])
    args = parser.parse_args()
    with open(args.pyproject, "rb") as f:
        deps: list[str] = tomllib.load(f)["project"]["dependencies"]
    excluded = {name.lower().replace("_", "-") for name in args.exclude}
    for dep in deps:
        name = re.split(r"[\s<>=!~;\[]", dep, maxsplit=1)[0].lower().replace("_", "-")
        if name not in excluded:
            print(dep)


if __name__ == "__main__":
    main()
