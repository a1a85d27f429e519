"""Checks pyctl's table of pip's options against the pip this interpreter imports.

Usage: python -I pip_options.py TABLE, where TABLE is the output of `pyctl __pip-options`
(`section spelling takes-value` lines). Every option of this pip (general ones, then those of
install and uninstall that are not general) must be in the table with the same takes-value;
prints what is missing and exits 1 otherwise. Used by tests/security.rs and the distro scenario,
so the table is checked against pip 20.3, 23.0 and 25.x.
"""
import sys

import pip
from pip._internal.cli.main_parser import create_main_parser
from pip._internal.commands import create_command


def spellings(option):
    return option._long_opts + option._short_opts


def lines():
    general = set()
    for option in create_main_parser()._get_all_options():
        for name in spellings(option):
            general.add(name)
            yield "general %s %s" % (name, str(option.takes_value()).lower())
    for command in ("install", "uninstall"):
        for option in create_command(command).parser._get_all_options():
            for name in spellings(option):
                if name not in general:
                    yield "%s %s %s" % (command, name, str(option.takes_value()).lower())


with open(sys.argv[1]) as table:
    known = set(line.strip() for line in table if line.strip())
real = set(lines())
missing = sorted(real - known)
if missing:
    print("pip %s has options pyctl's table lacks or reads differently:" % pip.__version__)
    for line in missing:
        print("  " + line)
    sys.exit(1)
print("pip %s: all %d options in pyctl's table" % (pip.__version__, len(real)))
