#!/usr/bin/env python3
"""The man pages name everything the programs accept, so they cannot drift from them.

Every option and subcommand that `vcplaned --help` and `vcplanectl [SUBCOMMAND...] --help`
print must appear in bold in vcplaned.8.scd / vcplanectl.8.scd, and every key the config
parser accepts must appear in bold in its table's section of vcplane.toml.5.scd. The parser
is asked itself: a file with an unknown key in every table makes `vcplaned --check` list, for
each table, the keys it expects.

  man_pages_test.py VCPLANED VCPLANECTL MAN_DIR
"""
import re
import subprocess
import sys
import tempfile

VCPLANED, VCPLANECTL, MAN_DIR = sys.argv[1:4]
failures = []


def check(ok, what):
    if not ok:
        print(f"FAIL  {what}")
        failures.append(what)


def page(name):
    with open(f"{MAN_DIR}/{name}.scd") as f:
        return f.read()


def bold(text):
    return set(re.findall(r"\*([^*\n]+)\*", text))


def help_of(*argv):
    """(options, subcommands) of one --help screen of CLI11."""
    out = subprocess.run([*argv, "--help"], capture_output=True, text=True, check=True).stdout
    options, subcommands, section = [], [], None
    for line in out.splitlines():
        if line.endswith(":") and not line.startswith(" "):
            section = line[:-1]
            continue
        m = re.match(r"  (\S+)", line)
        if not m:
            continue
        if section == "Options":
            options += [o for o in m.group(1).split(",") if o.startswith("-")]
        elif section == "Subcommands":
            subcommands.append(m.group(1))
    return options, subcommands


def check_program(program, man):
    spans = bold(page(man))
    # A subcommand path ("port attach") must begin a bold span; an option must be one.
    def walk(path):
        options, subcommands = help_of(program, *path)
        for o in options:
            check(o in spans, f"{man}: option {' '.join(path + [o])} is not in the page")
        for s in subcommands:
            sub = " ".join(path + [s])
            check(any(x == sub or x.startswith(sub + " ") for x in spans),
                  f"{man}: command '{sub}' is not in the page")
            walk(path + [s])
    walk([])
    return len(spans)


# The tables of a file and the man page section that documents each.
sections = {
    "": "TOP-LEVEL TABLES",
    "eal": "[eal]",
    "metrics": "[metrics]",
    "control": "[control]",
    "connections.c": "[connections._NAME_]",
    "calls.k": "[calls._NAME_]",
    "calls.k.parties[0]": "[[calls._NAME_.parties]]",
    "services.s": "[services._NAME_]",
}
probe = """zz_probe = 1
[eal]
zz_probe = 1
[metrics]
zz_probe = 1
[control]
zz_probe = 1
[connections.c]
zz_probe = 1
[calls.k]
zz_probe = 1
[[calls.k.parties]]
zz_probe = 1
[services.s]
zz_probe = 1
"""


def accepted_keys():
    with tempfile.NamedTemporaryFile("w", suffix=".toml") as f:
        f.write(probe)
        f.flush()
        r = subprocess.run([VCPLANED, "--check", f.name], capture_output=True, text=True)
    keys = {}
    for m in re.finditer(r":\d+: (\S*?)\.?zz_probe: unknown key \(expected one of: ([^)]*)\)",
                         r.stderr):
        keys[m.group(1)] = [k.strip() for k in m.group(2).split(",")]
    return keys, r.stderr


def section_text(text, heading):
    m = re.search(r"^# " + re.escape(heading) + r"\n(.*?)(?=^# |\Z)", text, re.M | re.S)
    return m.group(1) if m else None


check_program(VCPLANED, "vcplaned.8")
check_program(VCPLANECTL, "vcplanectl.8")

toml_page = page("vcplane.toml.5")
keys, report = accepted_keys()
check(set(keys) == set(sections),
      f"the parser reported unknown keys for tables {sorted(keys)}, expected {sorted(sections)}:"
      f"\n{report}")
count = 0
for table, heading in sections.items():
    text = section_text(toml_page, heading)
    check(text is not None, f"vcplane.toml.5: no section '# {heading}'")
    for key in keys.get(table, []):
        count += 1
        check(text is not None and key in bold(text),
              f"vcplane.toml.5: key {table + '.' if table else ''}{key} is not in '# {heading}'")

print(f"{count} config keys and every option and command checked; "
      f"{'FAILED' if failures else 'passed'}: {len(failures)} missing")
sys.exit(1 if failures else 0)
