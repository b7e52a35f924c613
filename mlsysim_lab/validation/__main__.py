"""``python -m mlsysim_lab.validation``: explain one case, print the error table, or refit the defaults.

    python -m mlsysim_lab.validation CASE          one case (a number from the table or part of its name)
    python -m mlsysim_lab.validation --table       the error table (--all: every metric of every case)
    python -m mlsysim_lab.validation --list        the case names, numbered
    python -m mlsysim_lab.validation --fit         refit on the calibration split, print the new defaults
    python -m mlsysim_lab.validation --fit --write ... and write them into efficiency.py
    python -m mlsysim_lab.validation --docs PATH   write the generated docs/validation.md
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlsysim_lab.validation", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("case", nargs="?", help="a case number or a unique part of its name")
    parser.add_argument("--table", action="store_true", help="print the error table")
    parser.add_argument("--all", action="store_true", help="with --table: every published metric")
    parser.add_argument("--list", action="store_true", help="list the cases")
    parser.add_argument("--fit", action="store_true", help="refit the defaults on the calibration split")
    parser.add_argument("--write", action="store_true", help="with --fit: write them into efficiency.py")
    parser.add_argument("--docs", metavar="PATH", help="write the generated validation page")
    args = parser.parse_args(argv)

    from . import fit as fitting
    from .report import explain_case, exclusions_text, markdown, summary_text, table_text
    from .runner import measurements, run_all

    if args.fit:
        values, residuals = fitting.fit()
        print(fitting.report(values, residuals))
        if args.write:
            print(f"written to {fitting.write(values)}")
        return 0
    if args.list:
        for i, m in enumerate(measurements(), 1):
            print(f"{i:2d}. [{m.split[:4]}] {m.name}")
        return 0
    if args.docs:
        path = Path(args.docs)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(markdown(run_all()), encoding="utf-8")
        print(f"written {path}")
        return 0
    if args.table:
        rows = run_all()
        print(table_text(rows, every_metric=args.all))
        print()
        print(summary_text(rows))
        print("\nExcluded (outside the model's scope):")
        print(exclusions_text())
        return 0
    if args.case:
        try:
            print(explain_case(args.case))
        except LookupError as err:
            print(err, file=sys.stderr)
            return 2
        return 0
    parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
