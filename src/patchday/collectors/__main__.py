"""`python3 -m patchday.collectors [--root R] [--changelogs]`: print this host's inventory document as JSON."""

from __future__ import annotations

import argparse
import json
import sys

from patchday.collectors.inventory import collect


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m patchday.collectors", description=__doc__)
    parser.add_argument("--root", default="/", help="the host's file system root (default: /)")
    parser.add_argument(
        "--changelogs", action="store_true", help="fetch candidate .debs to read the CVEs their changelogs name"
    )
    parser.add_argument("--cache-dir", default=None, help="keep fetched .debs here (default: a temporary directory)")
    args = parser.parse_args(argv)
    document = collect(args.root, changelogs=args.changelogs, cache_dir=args.cache_dir)
    text = json.dumps(document, ensure_ascii=False, indent=1) + "\n"
    # UTF-8 whatever the locale says: under LC_ALL=C an old Python's stdout would refuse non-ASCII names
    sys.stdout.buffer.write(text.encode("utf-8"))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
