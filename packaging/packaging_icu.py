"""Trim the ICU data library Qt ships (``libicudata.so.NN``, about 31 MiB) to what an English-only tray app uses.

Qt Core links ICU for collation, locale-aware case mapping and legacy text codecs; the app formats numbers with
Qt's own locale data and speaks UTF-8 only. So the build keeps ICU's non-locale data (properties, normalisation,
time zones, plural rules, break rules, the root collation) and the ``root`` and English bundles of every tree,
and drops the other locales' bundles, the legacy charset tables (``*.cnv``) and the CJK/Thai word dictionaries.
A locale without its bundle falls back to ``root``, as ICU does for any locale it lacks.

The data lives in one symbol (``icudtNN_dat``) filling ``.rodata``; it is copied out with ``objcopy``, trimmed
with ICU's ``icupkg`` (Debian's ``icu-devtools``) and linked back into a library of the same soname. Without
those tools the library is left whole and the reason returned.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from packaging_steps import BuildError, run

LOCALE = re.compile(r"^[a-z]{2,3}(_[A-Za-z0-9]*)*$")  # de, zh_Hant_TW, and aliases such as de_
KEPT_LOCALES = ("root", "en", "res_index")
TOOLS = ("objcopy", "nm", "icupkg", "cc")


def dropped(item: str) -> bool:
    """Whether a package item (``coll/de.res``, ``ibm-943_P15A-2003.cnv``...) is trimmed away."""
    name = item.rsplit("/", 1)[-1]
    if name.endswith((".cnv", ".dict")):
        return True
    stem, _, suffix = name.rpartition(".")
    if suffix != "res" or not LOCALE.match(stem):
        return False
    return not (stem in KEPT_LOCALES or stem.startswith("en_"))


def _data_symbol(library: Path) -> tuple[str, int]:
    """The ``icudtNN_dat`` symbol of the library and its size, checked to fill ``.rodata`` alone."""
    for line in run(["nm", "-D", "-S", "--defined-only", library], echo=False).stdout.splitlines():
        fields = line.split()
        if len(fields) == 4 and re.fullmatch(r"icudt\d+_dat", fields[3]):
            return fields[3], int(fields[1], 16)
    raise BuildError(f"{library.name} holds no icudtNN_dat symbol")


def trim_icu_data(library: Path) -> str:
    """Replace ``library`` with its trimmed build; a line saying what was done (or why it was left whole)."""
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        return f"ICU data left whole: {', '.join(missing)} not found (icupkg is in icu-devtools)"
    symbol, size = _data_symbol(library)
    soname = library.name
    with tempfile.TemporaryDirectory(prefix="ollacache-icu-") as scratch:
        work = Path(scratch)
        package = f"{symbol.removesuffix('_dat')}l.dat"  # icupkg checks the name against the package's own
        whole, trimmed = work / package, work / "trimmed" / package
        trimmed.parent.mkdir()
        run(["objcopy", "-O", "binary", "--only-section=.rodata", library, whole], echo=False)
        if whole.stat().st_size != size:
            return f"ICU data left whole: .rodata of {soname} is not just {symbol}"
        items = run(["icupkg", "-l", whole], echo=False).stdout.split()
        removals = [item for item in items if dropped(item)]
        (work / "drop.txt").write_text("\n".join(removals) + "\n")
        checked = subprocess.run(
            ["icupkg", "-r", str(work / "drop.txt"), str(whole), str(trimmed)], text=True, capture_output=True
        )
        if checked.returncode != 0:
            # the break rules name the word dictionaries; ICU breaks by rule alone when one is absent, so that
            # is the one dependency let go, and anything else stops the trim
            unmet = re.findall(r"depends on missing item (\S+)", checked.stdout + checked.stderr)
            if not unmet or not all(item.endswith(".dict") for item in unmet):
                return f"ICU data left whole: icupkg refused the trim: {(checked.stdout + checked.stderr)[-300:]}"
            run(["icupkg", "--ignore-deps", "-r", work / "drop.txt", whole, trimmed], echo=False)
        source = work / "data.S"
        source.write_text(
            f"\t.section .rodata\n\t.globl {symbol}\n\t.type {symbol}, @object\n\t.balign 16\n{symbol}:\n"
            f'\t.incbin "{trimmed}"\n\t.size {symbol}, . - {symbol}\n\t.section .note.GNU-stack,"",@progbits\n'
        )
        built = work / soname
        # linked against libc although it calls nothing, so that it says what it needs (lintian asks)
        run(
            [
                "cc",
                "-shared",
                "-s",
                f"-Wl,-soname,{soname}",
                "-Wl,-z,noexecstack",
                "-o",
                built,
                source,
                "-Wl,--no-as-needed",
                "-lc",
            ],
            echo=False,
        )
        before = library.stat().st_size
        shutil.copyfile(built, library)
    after = library.stat().st_size
    return (
        f"ICU data trimmed: {soname} {before / 2**20:.1f} -> {after / 2**20:.1f} MiB "
        f"({len(removals)} of {len(items)} items dropped: other locales, legacy charsets, word dictionaries)"
    )
